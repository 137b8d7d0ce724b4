// The HTTP edge of the server, below the routes: reading a request body under a byte limit
// and a deadline, finding a request's connection to notice a client that went away, a
// constant-time key comparison, and a listener that refuses a port already in use.
// Every limit here applies to the bytes after de-chunking and decompression, while they
// are read, so no body is ever held whole beyond the limit (docs/serving.md, "Security").
#pragma once

#include <httplib.h>

#include <chrono>
#include <string>
#include <string_view>

namespace strata::server {

using Clock = std::chrono::steady_clock;

enum class BodyStatus { kOk, kTooLarge, kTimeout, kAborted };

// Reads the body through httplib's content reader (which de-chunks and decompresses) into
// *out, stopping as soon as it would exceed `limit` bytes or `deadline` passes.
BodyStatus read_body(const httplib::ContentReader& reader, size_t limit, Clock::time_point deadline,
                     std::string* out);

// The socket of the connection that carries `req` (found by its local and remote address),
// or -1. The handler's thread owns that connection until it returns, so the descriptor
// stays valid for the handler's lifetime.
int connection_fd(const httplib::Request& req);
// True when the peer has closed or reset the connection (poll with POLLRDHUP; no data is
// consumed). fd < 0: false.
bool peer_gone(int fd);

// After an early answer on a connection whose request body was not read: reads and drops
// what the client still sends (at most max_bytes, for at most max_time, until it has been
// quiet for `quiet`, so a client that is still uploading gets to read the answer instead
// of a reset), then swaps the descriptor for one that reads as end-of-file. httplib's next
// read on that connection ends it, so bytes the client sent beyond the drained amount are
// never parsed as another request (shutdown(SHUT_RD) alone is not enough: Linux still hands
// out queued data). If undrained bytes remain, the kernel resets the connection.
void drain_and_close(int fd, size_t max_bytes, std::chrono::milliseconds max_time,
                     std::chrono::milliseconds quiet);

// Compares in time that depends only on the lengths, not on where the strings differ.
bool keys_equal(std::string_view a, std::string_view b);

// httplib socket options for the listener: SO_REUSEADDR (restart over TIME_WAIT) but not
// SO_REUSEPORT, so a second server cannot bind the same port and split its connections.
void listener_socket_options(int sock);

}  // namespace strata::server
