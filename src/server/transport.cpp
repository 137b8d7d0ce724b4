#include "server/transport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace strata::server {

BodyStatus read_body(const httplib::ContentReader& reader, size_t limit, Clock::time_point deadline,
                     std::string* out) {
    out->clear();
    BodyStatus st = BodyStatus::kOk;
    const bool ok = reader([&](const char* data, size_t n) {
        if (n > limit - out->size()) {
            st = BodyStatus::kTooLarge;
            return false;
        }
        if (Clock::now() > deadline) {
            st = BodyStatus::kTimeout;
            return false;
        }
        out->append(data, n);
        return true;
    });
    if (st == BodyStatus::kOk && !ok) st = BodyStatus::kAborted;
    if (st != BodyStatus::kOk) out->clear();
    return st;
}

namespace {

// The port and numeric host of a socket address, printed as httplib prints remote_addr.
bool addr_of(const sockaddr_storage& ss, socklen_t len, std::string* host, int* port) {
    char buf[NI_MAXHOST] = {};
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return false;
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) != 0)
        return false;
    *port = ss.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port)
                                    : ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    *host = buf;
    return true;
}

}  // namespace

int connection_fd(const httplib::Request& req) {
    DIR* d = opendir("/proc/self/fd");
    if (!d) return -1;
    int found = -1;
    while (dirent* e = readdir(d)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != 0 || fd < 0) continue;
        sockaddr_storage peer{}, local{};
        socklen_t pl = sizeof peer, ll = sizeof local;
        if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
        if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
        std::string ph, lh;
        int pp = -1, lp = -1;
        if (!addr_of(peer, pl, &ph, &pp) || !addr_of(local, ll, &lh, &lp)) continue;
        if (pp == req.remote_port && lp == req.local_port && ph == req.remote_addr) {
            found = int(fd);
            break;
        }
    }
    closedir(d);
    return found;
}

bool peer_gone(int fd) {
    if (fd < 0) return false;
    pollfd p{fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void drain_and_close(int fd, size_t max_bytes, std::chrono::milliseconds max_time,
                     std::chrono::milliseconds quiet) {
    if (fd < 0) return;
    const auto until = Clock::now() + max_time;
    char buf[16384];
    size_t got = 0;
    while (got < max_bytes) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, int(std::min<int64_t>(left, quiet.count()))) <= 0) break;  // quiet: done
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        got += size_t(n);
    }
    // Replace the connection with one end of a socket pair whose other end is closed:
    // reads return 0 and writes fail, so httplib closes "the connection" on its next
    // read; dup3 drops the last reference to the TCP socket now.
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
        close(pair[1]);
        if (dup3(pair[0], fd, O_CLOEXEC) < 0) shutdown(fd, SHUT_RDWR);
        close(pair[0]);
    } else {
        shutdown(fd, SHUT_RDWR);
    }
}

bool keys_equal(std::string_view a, std::string_view b) {
    // Walk the longer length so the time does not reveal a matching prefix.
    const size_t n = std::max(a.size(), b.size());
    unsigned diff = unsigned(a.size() != b.size());
    for (size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= unsigned(x ^ y);
    }
    // Keep the compiler from turning the loop into an early exit.
    volatile unsigned sink = diff;
    return sink == 0;
}

void listener_socket_options(int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
}

}  // namespace strata::server
