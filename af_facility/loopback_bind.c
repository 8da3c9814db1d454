/*
 * loopback_bind.c - LD_PRELOAD shim that keeps a server on the loopback interface.
 *
 * XRootD 5.5 has no listen-address directive: XrdNet::Bind() always binds the
 * wildcard address (0.0.0.0 or ::). This shim rewrites every wildcard bind() to
 * 127.0.0.1 (IPv4) or ::ffff:127.0.0.1 (dual-stack IPv6), keeping the port, so
 * the facility's servers are reachable from this machine only. Binds to a
 * specific address are passed through untouched. LOOPBACK_BIND_ADDRESS (an IPv4
 * loopback address, e.g. 127.0.0.2) replaces 127.0.0.1 as the target.
 *
 * Build: gcc -shared -fPIC -O2 -o libloopback_bind.so loopback_bind.c -ldl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

/* The address wildcard binds go to, in network order: LOOPBACK_BIND_ADDRESS or 127.0.0.1. */
static in_addr_t target_address(void)
{
    struct in_addr chosen;
    const char *wanted = getenv("LOOPBACK_BIND_ADDRESS");
    if (wanted && inet_pton(AF_INET, wanted, &chosen) == 1 && (ntohl(chosen.s_addr) >> 24) == 127)
        return chosen.s_addr;
    return htonl(INADDR_LOOPBACK);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (!real_bind) {
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
        if (!real_bind) {
            errno = ENOSYS;
            return -1;
        }
    }

    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in v4;
        memcpy(&v4, addr, sizeof v4);
        if (v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            v4.sin_addr.s_addr = target_address();
            return real_bind(fd, (const struct sockaddr *)&v4, sizeof v4);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 v6;
        memcpy(&v6, addr, sizeof v6);
        if (IN6_IS_ADDR_UNSPECIFIED(&v6.sin6_addr)) {
            /* IPv4-mapped loopback: IPv4 clients of 127.0.0.1 still reach a
               dual-stack socket; [::1] clients do not (use 127.0.0.1). */
            unsigned char mapped_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            in_addr_t v4_target = target_address();
            memcpy(mapped_loopback + 12, &v4_target, 4);
            memcpy(&v6.sin6_addr, mapped_loopback, sizeof mapped_loopback);
            return real_bind(fd, (const struct sockaddr *)&v6, sizeof v6);
        }
    }
    return real_bind(fd, addr, len);
}
