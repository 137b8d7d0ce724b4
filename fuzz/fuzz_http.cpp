// The server's HTTP layer end to end: a real server::Server (routes, pre-routing checks,
// body reading after de-chunking and decompression, completions on the engine) over the tiny
// fixture model, started once per process on 127.0.0.1 (any free port) in a background
// thread. Each input becomes one HTTP request on a fresh blocking socket:
//   byte 0  method (POST GET PUT OPTIONS HEAD DELETE PATCH "get") | flags << 3:
//           1 Origin header, 2 "Connection: close", 4 Content-Type json, 8 HTTP/1.0,
//           16 "Expect: 100-continue"
//   byte 1  path: the routes of server.cpp's route_of, variants and junk; the last index
//           takes the path from the body up to its first '\n' (at most 64 bytes)
//   byte 2  Authorization: right, wrong, absent, malformed (low 2 bits; bit 2 picks the
//           malformation); bit 3 picks the unknown Content-Encoding ("zstd" or "GZIP",
//           which must be refused with 415);
//           bit 4: before ending an incomplete request, wait 100 ms for an early answer
//   byte 3  framing (low 3 bits): Content-Length exact / too small / too large / absent,
//           chunked, malformed chunked, odd Content-Length text, chunked plus Content-Length;
//           the high 5 bits choose chunk sizes and the malformation
//   byte 4  Content-Encoding (low 3 bits): none, gzip, deflate, br, unknown, "gzip" on a raw
//           body, truncated gzip, "identity"; the high 5 bits repeat the body up to 2^k
//           times (capped at 4x the server's body limit) before encoding: compression bombs
//   rest    the body (JSON bodies from the dictionary and seeds). A completion body (a JSON
//           object with "messages" or "prompt") that would generate more than 4 tokens per
//           choice gets max_tokens 4 (re-serialized): the fixture model costs ~13 ms a token
//           under ASan, and the HTTP layer, not generation, is what this target explores
// An incomplete request (the server would wait for more) is ended by half-closing the
// socket; httplib then takes the client for gone (its MSG_PEEK sees EOF) and answers nothing,
// so only an answer sent before that is checked.
// Invariants: a response arrives (unless the request was incomplete, or the server refused
// and reset the connection while the body was still going out); its status is one of the
// server's documented ones (never 500); error bodies are OpenAI error objects; 401 never
// with the right key; 200 without it only on /health (204 only for a CORS preflight); JSON
// bodies parse; SSE events are JSON or [DONE], end with [DONE] and carry no server_error;
// 405 names Allow; after a "Connection: close" answer the server sends nothing more.
// Environment: STRATA_FUZZ_HTTP_LOG=1 prints one line per request (method, path, framing,
// encoding, status); STRATA_FUZZ_HTTP_ALLOW_REUSE=1 skips the last invariant (to fuzz on
// while a known connection-reuse finding is open).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#ifdef STRATA_FUZZ_BROTLI
#include <brotli/encode.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "fuzz.h"
#include "model/model.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace strata;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxBody = 64 * 1024;
constexpr const char* kKey = "k";

// Adapter id 0 exists (and does nothing); any other id is refused, as ServeHooks does.
class FakeHooks : public server::HookProvider {
public:
    Result<engine::RequestHooks> make(const std::optional<std::vector<server::HookRef>>& lora,
                                      const std::optional<std::vector<server::HookRef>>& fv) const override {
        for (const auto* refs : {&lora, &fv})
            if (*refs)
                for (const auto& r : **refs)
                    if (r.id != 0) return invalid_input("unknown id {}", r.id);
        return engine::RequestHooks{};
    }
    json list_lora() const override { return json::array({{{"id", 0}, {"name", "a.gguf"}, {"scale", 1.0}}}); }
    json list_fv() const override { return json::array(); }
};

struct Fixture {
    std::unique_ptr<model::Model> model;
    std::unique_ptr<Tokenizer> tok;
    std::unique_ptr<engine::Engine> eng;
    FakeHooks hooks;
    std::unique_ptr<server::Server> srv;
    std::thread th;
    int port = 0;
};

Fixture* g_fixture = nullptr;

// Stops the server and the engine before the process's static objects go away.
void stop_fixture() {
    Fixture* f = g_fixture;
    if (!f) return;
    g_fixture = nullptr;
    f->srv->stop();
    if (f->th.joinable()) f->th.join();
    f->srv.reset();
    f->eng.reset();
    delete f;
}

Fixture& fixture() {
    static Fixture* f = [] {
        std::signal(SIGPIPE, SIG_IGN);
        auto* fx = new Fixture;
        const std::string path = fuzz::source_path("tests/fixtures/tiny-llama.gguf");
        auto m = model::load_model(path);
        STRATA_FUZZ_CHECK(bool(m), m ? "" : m.error().message());
        fx->model = std::move(*m);
        auto t = Tokenizer::from_gguf(*fx->model->file);
        STRATA_FUZZ_CHECK(bool(t), t ? "" : t.error().message());
        fx->tok = std::move(*t);
        engine::EngineOptions eo;
        eo.n_slots = 2;
        eo.n_ctx = 256;
        eo.max_queue = 4;
        eo.n_threads = 1;
        auto e = engine::Engine::create(*fx->model, *fx->tok, eo);
        STRATA_FUZZ_CHECK(bool(e), e ? "" : e.error().message());
        fx->eng = std::move(*e);
        server::ServerOptions so;
        so.host = "127.0.0.1";
        so.port = 0;
        so.api_key = kKey;
        so.max_body_bytes = kMaxBody;
        so.http_threads = 4;
        so.timeout_s = 5;
        so.body_timeout_s = 2;
        so.drain_quiet_ms = 20;  // loopback: the whole body is sent before the answer is read
        so.cors_origin = "*";
        fx->srv = std::make_unique<server::Server>(*fx->eng, *fx->tok,
                                                   chat_template_from_jinja(fx->tok->vocab().chat_template), so,
                                                   &fx->hooks);
        std::atomic<bool> failed{false};
        fx->th = std::thread([fx, &failed] {
            if (!fx->srv->run()) failed = true;
        });
        // run() binds (the socket listens from then on) and sets the port before serving.
        for (int i = 0; i < 500 && !failed && fx->srv->bound_port() <= 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        STRATA_FUZZ_CHECK(!failed && fx->srv->bound_port() > 0, "the server did not start");
        fx->port = fx->srv->bound_port();
        g_fixture = fx;
        std::atexit(stop_fixture);
        return fx;
    }();
    return *f;
}

// --- the request -------------------------------------------------------------------------

const char* const kMethods[] = {"POST", "GET", "PUT", "OPTIONS", "HEAD", "DELETE", "PATCH", "get"};

const char* const kPaths[] = {
    "/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize", "/v1/models",
    "/v1/models/strata", "/v1/models/other", "/lora-adapters", "/function-vectors", "/openapi.json",
    "/health", "/metrics", "/v1/chat/completions?stream=true", "/v1/completions/", "/HEALTH", "/health?x=1",
    "//health", "/v1/../health", "/v1/models/", "/v1/models/strata/x", "/v1/models/%73trata", "/%68ealth",
    "/v1/chat/completions#frag", "*", "/", "/v1/models/%zz", "/tokenize%00", "/v1//completions",
};
constexpr size_t kNumPaths = sizeof(kPaths) / sizeof(kPaths[0]);

enum Framing { kExact, kShort, kLong, kNoLength, kChunked, kBadChunked, kOddLength, kChunkedAndLength };
enum Encoding { kIdentity, kGzip, kDeflate, kBrotli, kUnknown, kFakeGzip, kTruncGzip, kIdentityHeader };

std::string zcompress(const std::string& in, int window_bits) {
    z_stream zs{};
    STRATA_FUZZ_CHECK(deflateInit2(&zs, 1, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
    std::string out(deflateBound(&zs, uLong(in.size())) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = uInt(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = uInt(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    STRATA_FUZZ_CHECK(rc == Z_STREAM_END, "deflate");
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

std::string brotli(const std::string& in) {
#ifdef STRATA_FUZZ_BROTLI
    size_t n = BrotliEncoderMaxCompressedSize(in.size());
    if (n == 0) n = in.size() + 1024;
    std::string out(n, '\0');
    const bool ok = BrotliEncoderCompress(1, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                                          reinterpret_cast<const uint8_t*>(in.data()), &n,
                                          reinterpret_cast<uint8_t*>(out.data()));
    STRATA_FUZZ_CHECK(ok, "BrotliEncoderCompress");
    out.resize(n);
    return out;
#else
    return in;  // the server then fails to decode it: a 400
#endif
}

std::string hex(size_t n, bool upper) {
    char b[32];
    std::snprintf(b, sizeof b, upper ? "%zX" : "%zx", n);
    return b;
}

// The body as chunks. Sizes follow p (1..31; 0 = one chunk); size lines vary in valid ways
// (case, leading zeros, an extension). bad >= 0 breaks it in one of 10 ways.
std::string chunked(const std::string& body, unsigned p, int bad) {
    std::string out;
    size_t off = 0;
    for (size_t i = 0; off < body.size(); ++i) {
        size_t n = p == 0 ? body.size() : 1 + (p * 7 + i * p * p) % (4 * p + 1);
        n = std::min(n, body.size() - off);
        const bool last = off + n == body.size();
        std::string size_line = hex(n, p & 1);
        if (p & 2) size_line = "00" + size_line;
        if ((p & 12) == 12) size_line += ";ext=\"a b\"";
        if (last && bad == 2) size_line = hex(n + 5, false);  // declares more than follows
        if (bad == 3 && last) size_line = "zz";
        if (bad == 4 && last) size_line = "-2";
        if (bad == 5 && last) size_line = "ffffffffffffffff0";
        const char* eol = bad == 8 ? "\n" : "\r\n";
        out += size_line + eol;
        out.append(body, off, n);
        if (!(bad == 7 && last)) out += eol;  // 7: data not followed by CRLF
        else out += "XY";
        off += n;
    }
    switch (bad) {
        case 0: break;                                          // no last chunk
        case 1: out += "0\r\n"; break;                          // no blank line after it
        case 6: out += "0\r\nX-Trailer: 1\r\n\r\n"; break;      // a trailer
        case 8: out += "0\n\n"; break;                          // bare LF
        case 9: out += "0\r\n\r\n0\r\n\r\n"; break;             // a second last chunk
        default: out += "0\r\n\r\n"; break;
    }
    return out;
}

constexpr int kMaxTokens = 4;

// Caps a completion body's tokens per choice (see the top of the file); other bodies, and
// ones that already ask for few tokens, go to the server byte for byte.
void cap_tokens(std::string* body) {
    if (body->find("\"messages\"") == std::string::npos && body->find("\"prompt\"") == std::string::npos) return;
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    bool changed = false, given = false;
    for (const char* k : {"max_tokens", "max_completion_tokens"}) {
        auto it = j.find(k);
        if (it == j.end() || it->is_null()) continue;
        given = true;
        if (it->is_number() && it->get<double>() > kMaxTokens) {
            *it = kMaxTokens;
            changed = true;
        }
    }
    if (!given) {
        j["max_tokens"] = kMaxTokens;
        changed = true;
    }
    if (changed) *body = j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct Request {
    std::string bytes;       // what goes on the wire
    std::string method, path;
    bool key_right = false;  // "Authorization: Bearer k"
    bool complete = true;    // a server reading per the headers sees the whole message
    bool has_body = false;   // body bytes follow the headers
    bool preflight = false;  // OPTIONS with an Origin
    bool wait_early = false; // incomplete: wait for an early answer before half-closing
    bool bad_encoding = false; // a body with a Content-Encoding the server does not decode
};

Request decode(const uint8_t* data, size_t size) {
    uint8_t h[5] = {};
    std::memcpy(h, data, std::min<size_t>(size, 5));
    std::string body(reinterpret_cast<const char*>(data) + std::min<size_t>(size, 5), size - std::min<size_t>(size, 5));
    Request r;
    r.method = kMethods[h[0] & 7];
    const unsigned flags = h[0] >> 3;
    const size_t pi = h[1] % (kNumPaths + 1);
    if (pi < kNumPaths) {
        r.path = kPaths[pi];
    } else {
        const size_t nl = std::min<size_t>(body.find('\n'), 64);
        r.path = body.substr(0, nl);
        body.erase(0, std::min(body.size(), nl + 1));
        for (char& c : r.path)
            if (c == '\r' || c == ' ' || c == '\0') c = '_';
        if (r.path.empty() || r.path[0] != '/') r.path.insert(0, "/");
    }
    cap_tokens(&body);
    r.preflight = r.method == "OPTIONS" && (flags & 1);
    r.wait_early = (h[2] & 16) && !(flags & 16);  // an interim 100 Continue is no early answer

    // Content-Encoding, after repeating the body (bombs: small on the wire, large decoded).
    const unsigned enc = h[4] & 7, rep_log = h[4] >> 3;
    if (rep_log > 0 && !body.empty()) {
        const size_t cap = 4 * kMaxBody;
        size_t rep = size_t(1) << std::min(rep_log, 20u);
        rep = std::max<size_t>(1, std::min(rep, cap / body.size()));
        std::string big;
        big.reserve(body.size() * rep);
        for (size_t i = 0; i < rep; ++i) big += body;
        body.swap(big);
    }
    std::string ce;
    switch (enc) {
        case kGzip: ce = "gzip", body = zcompress(body, 31); break;
        case kDeflate: ce = "deflate", body = zcompress(body, 15); break;
        case kBrotli: ce = "br", body = brotli(body); break;
        case kUnknown: ce = (h[2] & 8) ? "zstd" : "GZIP"; break;
        case kFakeGzip: ce = "gzip"; break;
        case kTruncGzip: ce = "gzip", body = zcompress(body, 31), body.resize(body.size() / 2); break;
        case kIdentityHeader: ce = "identity"; break;
        default: break;
    }

    std::string head = r.method + " " + r.path + ((flags & 8) ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    head += "Host: 127.0.0.1\r\n";
    switch (h[2] & 3) {
        case 0: head += std::string("Authorization: Bearer ") + kKey + "\r\n", r.key_right = true; break;
        case 1: head += "Authorization: Bearer wrong\r\n"; break;
        case 2: break;
        default: head += (h[2] & 4) ? "Authorization: Basic k\r\n" : "Authorization: Bearer  k\r\n"; break;
    }
    if (flags & 1) head += "Origin: http://example.test\r\n";
    if (flags & 2) head += "Connection: close\r\n";
    if (flags & 4) head += "Content-Type: application/json\r\n";
    if (flags & 16) head += "Expect: 100-continue\r\n";
    if (!ce.empty()) head += "Content-Encoding: " + ce + "\r\n";

    const unsigned framing = h[3] & 7, p = h[3] >> 3;
    std::string payload = body;
    switch (framing) {
        case kExact:
            if (!body.empty() || r.method == "POST") head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
            break;
        case kShort:  // the rest of the body reads as the next request
            head += "Content-Length: " + std::to_string(body.size() / 2) + "\r\n";
            break;
        case kLong:
            head += "Content-Length: " + std::to_string(body.size() + 1 + p) + "\r\n";
            r.complete = false;
            break;
        case kNoLength:  // httplib reads a POST/PUT body to the end of the connection
            r.complete = !body.empty() ? false : !(r.method == "POST" || r.method == "PUT" || r.method == "PATCH");
            break;
        case kChunked:
            head += (p & 16) ? "Transfer-Encoding: Chunked\r\n" : "Transfer-Encoding: chunked\r\n";
            payload = chunked(body, p & 15 ? p : 0, -1);
            break;
        case kBadChunked: {
            const int bad = int(p % 10);
            head += (p >= 20) ? "Transfer-Encoding: gzip, chunked\r\n" : "Transfer-Encoding: chunked\r\n";
            payload = chunked(body, (p % 3) * 5, bad);
            r.complete = false;
            break;
        }
        case kOddLength: {
            const std::string n = std::to_string(body.size());
            const std::string v[] = {"+" + n, n + ", " + n, "0x" + hex(body.size(), false), "-1",
                                     "99999999999999999999", n + " ", "0" + n, " " + n};
            head += "Content-Length: " + v[p % 8] + "\r\n";
            if (p % 8 == 7 || p % 8 == 5) head += "Content-Length: " + n + "\r\n";  // and a duplicate
            r.complete = false;
            break;
        }
        case kChunkedAndLength:
            payload = chunked(body, p & 15, -1);
            head += "Transfer-Encoding: chunked\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n";
            break;
    }
    head += "\r\n";
    r.has_body = !payload.empty();
    // The headers announce a body (so the server would read it) in that unknown coding.
    const bool announced = (framing == kExact && !body.empty()) || (framing == kShort && body.size() >= 2) ||
                           framing == kChunked || framing == kChunkedAndLength;
    r.bad_encoding = enc == kUnknown && announced;
    r.bytes = head + payload;
    return r;
}

// --- the response ------------------------------------------------------------------------

struct Conn {
    int fd = -1;
    std::string buf;  // received, not yet consumed
    bool eof = false, reset = false, timed_out = false;
    Clock::time_point deadline;
    ~Conn() {
        if (fd >= 0) close(fd);
    }
    // Reads more into buf; false at EOF, reset or timeout.
    bool fill() {
        if (eof || reset || timed_out) return false;
        if (Clock::now() > deadline) {
            timed_out = true;
            return false;
        }
        char tmp[16384];
        const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            buf.append(tmp, size_t(n));
            return true;
        }
        if (n == 0) {
            eof = true;
            return false;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;  // until the deadline
        reset = true;
        return false;
    }
};

struct Response {
    bool got = false;  // a complete final response
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;
    std::string header(const std::string& name) const {
        for (const auto& [k, v] : headers)
            if (k == name) return v;
        return "";
    }
};

std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// One response (interim 1xx responses skipped); got = false when the connection ended first.
Response read_response(Conn& c, bool head_request) {
    Response r;
    for (;;) {
        size_t end;
        while ((end = c.buf.find("\r\n\r\n")) == std::string::npos)
            if (!c.fill()) return r;
        const std::string head = c.buf.substr(0, end);
        c.buf.erase(0, end + 4);
        STRATA_FUZZ_CHECK(head.rfind("HTTP/1.", 0) == 0 && head.size() >= 12, "bad status line: " + head.substr(0, 80));
        r.status = std::atoi(head.c_str() + 9);
        r.headers.clear();
        size_t pos = head.find("\r\n");
        while (pos != std::string::npos) {
            const size_t next = head.find("\r\n", pos + 2);
            const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
            const size_t colon = line.find(':');
            STRATA_FUZZ_CHECK(colon != std::string::npos, "bad header line: " + line);
            std::string v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.erase(0, 1);
            r.headers.emplace_back(lower(line.substr(0, colon)), v);
            pos = next;
        }
        if (r.status >= 100 && r.status < 200) continue;
        break;
    }
    if (head_request || r.status == 204 || r.status == 304) {
        r.got = true;
        return r;
    }
    if (lower(r.header("transfer-encoding")) == "chunked") {
        for (;;) {
            size_t eol;
            while ((eol = c.buf.find("\r\n")) == std::string::npos)
                if (!c.fill()) return r;
            const size_t n = std::strtoul(c.buf.c_str(), nullptr, 16);
            c.buf.erase(0, eol + 2);
            while (c.buf.size() < n + 2)
                if (!c.fill()) return r;
            r.body.append(c.buf, 0, n);
            STRATA_FUZZ_CHECK(c.buf.compare(n, 2, "\r\n") == 0, "response chunk not followed by CRLF");
            c.buf.erase(0, n + 2);
            if (n == 0) break;
        }
    } else if (!r.header("content-length").empty()) {
        const size_t n = std::strtoul(r.header("content-length").c_str(), nullptr, 10);
        while (c.buf.size() < n)
            if (!c.fill()) return r;
        r.body = c.buf.substr(0, n);
        c.buf.erase(0, n);
    } else {
        while (c.fill()) {
        }
        if (c.timed_out) return r;
        r.body.swap(c.buf);
    }
    r.got = true;
    return r;
}

std::string percent_decoded(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += char(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

void check_error_json(const Response& r, const std::string& what) {
    const json j = json::parse(r.body, nullptr, false);
    STRATA_FUZZ_CHECK(!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object(),
                      what + ": not an OpenAI error: " + r.body.substr(0, 200));
    const json& e = j["error"];
    STRATA_FUZZ_CHECK(e.contains("message") && e["message"].is_string() && e.contains("type") && e["type"].is_string(),
                      what + ": error without message/type: " + r.body.substr(0, 200));
}

void check_response(const Request& q, const Response& r, bool half_closed) {
    const std::string what = q.method + " " + q.path + " -> " + std::to_string(r.status);
    static const int kAllowed[] = {200, 204, 400, 401, 404, 405, 408, 413, 415, 429, 503, 504};
    // 499: the server took the half-close that ended an incomplete request for a client that
    // went away, cancelled the completion and still wrote its "client closed" error.
    const bool allowed = std::find(std::begin(kAllowed), std::end(kAllowed), r.status) != std::end(kAllowed) ||
                         (r.status == 499 && half_closed);
    STRATA_FUZZ_CHECK(allowed, what + " " + r.body.substr(0, 300));
    const bool head = q.method == "HEAD";
    const std::string ctype = r.header("content-type");
    if (r.status >= 400 && !r.body.empty()) check_error_json(r, what);
    if (r.status == 401) STRATA_FUZZ_CHECK(!q.key_right, what + " with the right key");
    if (r.status == 405) STRATA_FUZZ_CHECK(!r.header("allow").empty(), what + " without Allow");
    // A body in a coding the server cannot decode is refused (415), never read as identity.
    if (r.status == 200 && q.has_body) STRATA_FUZZ_CHECK(!q.bad_encoding, what + " with an unsupported Content-Encoding");
    if (r.status == 204) STRATA_FUZZ_CHECK(q.preflight, what + " for a request that is not a CORS preflight");
    if (r.status == 200 && !q.key_right) {
        std::string p = q.path.substr(0, q.path.find_first_of("?#"));
        p = percent_decoded(p);
        STRATA_FUZZ_CHECK(p == "/health", what + " without the API key");
    }
    if (r.status == 200 && !head && ctype.rfind("application/json", 0) == 0) {
        STRATA_FUZZ_CHECK(!json::parse(r.body, nullptr, false).is_discarded(), what + ": bad JSON: " + r.body.substr(0, 200));
    }
    if (r.status == 200 && !head && ctype.rfind("text/event-stream", 0) == 0) {
        // Events: "data: <json>\n\n" ... "data: [DONE]\n\n".
        size_t pos = 0;
        bool done = false;
        while (pos < r.body.size()) {
            const size_t end = r.body.find("\n\n", pos);
            STRATA_FUZZ_CHECK(end != std::string::npos, what + ": unterminated SSE event");
            const std::string ev = r.body.substr(pos, end - pos);
            pos = end + 2;
            STRATA_FUZZ_CHECK(ev.rfind("data: ", 0) == 0, what + ": SSE line: " + ev.substr(0, 100));
            STRATA_FUZZ_CHECK(!done, what + ": event after [DONE]");
            const std::string data = ev.substr(6);
            if (data == "[DONE]") {
                done = true;
                continue;
            }
            const json j = json::parse(data, nullptr, false);
            STRATA_FUZZ_CHECK(!j.is_discarded() && j.is_object(), what + ": SSE data: " + data.substr(0, 200));
            if (j.contains("error")) {
                const json& e = j["error"];
                STRATA_FUZZ_CHECK(e.is_object() && (e.value("type", "") != "server_error" ||
                                                    e.value("message", "") == "server is shutting down"),
                                  what + ": stream error: " + data.substr(0, 200));
            }
        }
        STRATA_FUZZ_CHECK(done, what + ": stream without [DONE]");
    }
}

}  // namespace

STRATA_FUZZ_TARGET(http) {
    Fixture& fx = fixture();
    const Request q = decode(data, size);

    Conn c;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    STRATA_FUZZ_CHECK(c.fd >= 0, std::strerror(errno));
    timeval tv{2, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(fx.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // libFuzzer's -timeout ticks SIGALRM every second: an interrupted connect goes on in the
    // background, so wait for it to finish instead of calling it again.
    int rc = connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc != 0 && errno == EINTR) {
        pollfd pf{c.fd, POLLOUT, 0};
        while ((rc = poll(&pf, 1, 5000)) < 0 && errno == EINTR) {
        }
        int err = 0;
        socklen_t len = sizeof err;
        rc = (rc == 1 && getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ? 0 : -1;
        if (rc != 0 && err != 0) errno = err;
    }
    STRATA_FUZZ_CHECK(rc == 0, std::string("connect: ") + std::strerror(errno));
    // The server answers 5 s after the request at the latest (timeout_s); 2 s more of slack.
    c.deadline = Clock::now() + std::chrono::seconds(7);

    bool sent_all = true;
    for (size_t off = 0; off < q.bytes.size();) {
        const ssize_t n = send(c.fd, q.bytes.data() + off, q.bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            sent_all = false;  // the server refused and closed, or stopped reading
            break;
        }
        off += size_t(n);
    }
    // An incomplete message would leave the server waiting for the rest: end it (after a
    // chance to refuse it early: route, method, key, Content-Length, a bad chunk line).
    // Once an answer has started, the socket stays open: httplib checks the peer before each
    // write and would drop the rest of the answer.
    bool half_closed = false;
    if (!q.complete) {
        pollfd pf{c.fd, POLLIN, 0};
        if (!q.wait_early || poll(&pf, 1, 100) <= 0) {
            shutdown(c.fd, SHUT_WR);
            half_closed = true;
        }
    }

    const Response r = read_response(c, q.method == "HEAD");
    const std::string what = q.method + " " + q.path;
    static const bool log = std::getenv("STRATA_FUZZ_HTTP_LOG") != nullptr;
    static const bool allow_reuse = std::getenv("STRATA_FUZZ_HTTP_ALLOW_REUSE") != nullptr;
    if (log)
        std::fprintf(stderr, "http: %s framing=%u enc=%u complete=%d half_closed=%d sent_all=%d -> %d%s%s %s\n",
                     what.c_str(), size > 3 ? data[3] & 7u : 0u, size > 4 ? data[4] & 7u : 0u, int(q.complete),
                     int(half_closed), int(sent_all),
                     r.status, r.got ? "" : " (no response)", c.reset ? " reset" : "", r.body.substr(0, 160).c_str());
    if (!r.got) {
        STRATA_FUZZ_CHECK(!c.timed_out || half_closed, what + ": no response within 7 s");
        // No answer is fine when the request never ended properly (the server may treat the
        // half-close as a client that went away), when the body could not be sent, or when
        // the server reset the connection after refusing the request with its body unread.
        STRATA_FUZZ_CHECK(half_closed || !sent_all || (c.reset && q.has_body),
                          what + ": connection ended without a response" + (c.reset ? " (reset)" : " (EOF)"));
        return 0;
    }
    check_response(q, r, half_closed);
    // A "Connection: close" answer ends the connection: nothing of the unread body may be
    // answered as another request (request smuggling past the pre-routing checks).
    if (lower(r.header("connection")) == "close" && !allow_reuse) {
        while (c.fill()) {
        }
        STRATA_FUZZ_CHECK(c.buf.empty(), what + ": bytes after a Connection: close response: " + c.buf.substr(0, 200));
        STRATA_FUZZ_CHECK(!c.timed_out, what + ": connection left open after a Connection: close response");
    }
    return 0;
}
