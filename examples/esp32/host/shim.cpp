// A host for the device logic (../device_flow.cpp), so the test suite runs the example against
// the real server: HTTP/1.1 over POSIX sockets (plain http on loopback; the ESP32 sketch uses
// TLS), storage in a file, the real clock. It prints one line per event on stdout and takes
// commands on stdin, one per line:
//
//   pair                 run the device flow until tokens, denial or expiry
//   refresh              one refresh (with its retries)
//   telemetry URL JSON   POST the reading JSON to URL with the access token; prints TELEMETRY <status>
//   token-type           prints TOKEN_TYPE <Bearer|DPoP>
//   access-token         prints ACCESS_TOKEN <the current access token>
//   replay URL JSON      POSTs JSON to URL again with the last request's DPoP proof; prints REPLAY <status>
//   dpop-cost N          signs N proof-sized inputs; prints DPOP_SIGN_US <median microseconds>
//   quit
//
// Usage: shim ISSUER CLIENT_ID STORAGE_FILE [--drop-refresh-reply N] [--poll-fast] [--dpop]
//   --drop-refresh-reply N  the Nth refresh request is sent, and its reply thrown away (a lost
//                           response on flaky Wi-Fi)
//   --poll-fast             the second poll is sent at once, without waiting for the interval
//   --dpop                  DPoP-bind the tokens to a P-256 key made for this run (OpenSSL; the
//                           sketch keeps its key in NVS)
#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "../device_flow.h"

namespace {

struct Url {
    std::string host, port, path;
};

bool parse_url(const std::string& url, Url& out) {
    const std::string scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return false;
    std::string rest = url.substr(scheme.size());
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    out.path = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    out.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
    return true;
}

lca::HttpResponse exchange(const std::string& url, const std::string& content_type, const std::string& body,
                           const std::string& authorization, const std::string& dpop) {
    lca::HttpResponse res;
    Url u;
    if (!parse_url(url, u)) return res;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &found) != 0) return res;
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        freeaddrinfo(found);
        if (fd >= 0) close(fd);
        return res;
    }
    freeaddrinfo(found);
    std::ostringstream req;
    req << "POST " << u.path << " HTTP/1.1\r\nHost: " << u.host << ":" << u.port << "\r\nConnection: close\r\n"
        << "Content-Type: " << content_type << "\r\nContent-Length: " << body.size() << "\r\n";
    if (!authorization.empty()) req << "Authorization: " << authorization << "\r\n";
    if (!dpop.empty()) req << "DPoP: " << dpop << "\r\n";
    req << "\r\n" << body;
    const std::string out = req.str();
    for (size_t sent = 0; sent < out.size();) {
        ssize_t n = send(fd, out.data() + sent, out.size() - sent, 0);
        if (n <= 0) {
            close(fd);
            return res;
        }
        sent += static_cast<size_t>(n);
    }
    std::string reply;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<size_t>(n));
    close(fd);
    // "HTTP/1.1 200 OK\r\n…\r\n\r\nbody" (Connection: close, so the body runs to the end;
    // the server sends Content-Length, never chunks, for these small JSON answers).
    if (reply.compare(0, 9, "HTTP/1.1 ") != 0 || reply.size() < 12) return res;
    size_t head_end = reply.find("\r\n\r\n");
    if (head_end == std::string::npos) return res;
    res.status = std::atoi(reply.substr(9, 3).c_str());
    res.body = reply.substr(head_end + 4);
    // Header names are case-insensitive; the value runs to the end of its line.
    std::string head = reply.substr(0, head_end + 2);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t at = lower.find("\r\ndpop-nonce:");
    if (at != std::string::npos) {
        size_t start = at + 13;
        size_t end = head.find("\r\n", start);
        std::string value = head.substr(start, end - start);
        value.erase(0, value.find_first_not_of(' '));
        res.dpop_nonce = value;
    }
    return res;
}

class SocketHttp : public lca::Http {
  public:
    int drop_refresh_reply = 0;  // the Nth refresh's reply is lost (0: none)

    lca::HttpResponse post_form(const std::string& url, const lca::Form& form, const std::string& dpop) override {
        std::string body;
        bool refresh = false;
        for (const auto& [k, v] : form) {
            if (!body.empty()) body += '&';
            body += lca::form_encode(k) + "=" + lca::form_encode(v);
            if (k == "grant_type" && v == "refresh_token") refresh = true;
        }
        lca::HttpResponse res = exchange(url, "application/x-www-form-urlencoded", body, "", dpop);
        if (refresh && ++refreshes_ == drop_refresh_reply) {
            std::cout << "DROPPED_REPLY status=" << res.status << std::endl;
            return {};
        }
        return res;
    }

    lca::HttpResponse post_json(const std::string& url, const std::string& json, const std::string& authorization,
                                const std::string& dpop) override {
        last_dpop = dpop;
        return exchange(url, "application/json", json, authorization, dpop);
    }

    std::string last_dpop;  // the DPoP proof of the last JSON request, for `replay`

  private:
    int refreshes_ = 0;
};

class FileStorage : public lca::Storage {
  public:
    explicit FileStorage(std::string path) : path_(std::move(path)) {}
    std::optional<std::string> get(const std::string& key) override {
        std::ifstream in(path_);
        std::string line;
        while (std::getline(in, line))
            if (line.compare(0, key.size() + 1, key + "=") == 0) return line.substr(key.size() + 1);
        return std::nullopt;
    }
    void put(const std::string& key, const std::string& value) override { std::ofstream(path_) << key << "=" << value << "\n"; }
    void erase(const std::string&) override { std::ofstream(path_, std::ios::trunc); }

  private:
    std::string path_;
};

class RealClock : public lca::Clock {
  public:
    uint64_t now_ms() override {
        using namespace std::chrono;
        return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
    }
    void sleep_ms(uint64_t ms) override { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
    uint32_t random() override { return rng_(); }

  private:
    std::mt19937 rng_{std::random_device{}()};
};

// A P-256 key made for this run, with OpenSSL 3.
class OpenSslSigner : public lca::Signer {
  public:
    OpenSslSigner() : key_(EVP_EC_gen("P-256")) {}
    ~OpenSslSigner() override { EVP_PKEY_free(key_); }
    OpenSslSigner(const OpenSslSigner&) = delete;
    OpenSslSigner& operator=(const OpenSslSigner&) = delete;

    bool ok() const { return key_ != nullptr; }
    std::string public_x() override { return coordinate(OSSL_PKEY_PARAM_EC_PUB_X); }
    std::string public_y() override { return coordinate(OSSL_PKEY_PARAM_EC_PUB_Y); }

    std::string sign(const std::string& data) override {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        std::string out;
        size_t len = 0;
        if (ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1) {
            std::string der(len, '\0');
            if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(&der[0]), &len,
                               reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1) {
                // DER's SEQUENCE of two INTEGERs to JOSE's fixed-width r || s.
                const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
                ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
                if (sig != nullptr) {
                    const BIGNUM* r = nullptr;
                    const BIGNUM* s = nullptr;
                    ECDSA_SIG_get0(sig, &r, &s);
                    unsigned char rs[64];
                    if (BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32)
                        out.assign(reinterpret_cast<char*>(rs), 64);
                    ECDSA_SIG_free(sig);
                }
            }
        }
        EVP_MD_CTX_free(ctx);
        return out;
    }

    std::string sha256(const std::string& data) override {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
        return std::string(reinterpret_cast<char*>(md), sizeof md);
    }

    long long unix_seconds() override { return static_cast<long long>(std::time(nullptr)); }

  private:
    std::string coordinate(const char* name) {
        BIGNUM* n = nullptr;
        std::string out;
        unsigned char buf[32];
        if (EVP_PKEY_get_bn_param(key_, name, &n) == 1 && BN_bn2binpad(n, buf, 32) == 32)
            out.assign(reinterpret_cast<char*>(buf), 32);
        BN_free(n);
        return out;
    }

    EVP_PKEY* key_;
};

class PrintListener : public lca::Listener {
  public:
    void on(lca::Event event, const std::string& detail) override {
        std::cout << lca::event_name(event) << (detail.empty() ? "" : " ") << detail << std::endl;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: shim ISSUER CLIENT_ID STORAGE_FILE [--drop-refresh-reply N] [--poll-fast]\n";
        return 2;
    }
    SocketHttp http;
    FileStorage storage(argv[3]);
    RealClock clock;
    PrintListener listener;
    int early_poll = 0;
    bool dpop = false;
    for (int i = 4; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--drop-refresh-reply" && i + 1 < argc) http.drop_refresh_reply = std::atoi(argv[++i]);
        else if (arg == "--poll-fast") early_poll = 2;
        else if (arg == "--dpop") dpop = true;
        else {
            std::cerr << "unknown argument " << arg << "\n";
            return 2;
        }
    }
    lca::Config config;
    config.issuer = argv[1];
    config.client_id = argv[2];
    config.max_refresh_attempts = 3;
    OpenSslSigner signer;
    if (dpop) {
        if (!signer.ok()) {
            std::cerr << "no P-256 key\n";
            return 2;
        }
        config.dpop = &signer;
    }
    lca::DeviceFlow flow(config, http, storage, clock, listener);
    std::cout << "READY paired=" << (flow.paired() ? "yes" : "no") << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream words(line);
        std::string command;
        words >> command;
        if (command == "pair") {
            flow.pair(early_poll);
        } else if (command == "refresh") {
            flow.refresh();
        } else if (command == "telemetry") {
            std::string url, json;
            words >> url;
            std::getline(words, json);
            std::cout << "TELEMETRY " << flow.post_telemetry(url, json) << std::endl;
        } else if (command == "access-token") {
            std::cout << "ACCESS_TOKEN " << flow.access_token() << std::endl;
        } else if (command == "replay") {
            std::string url, json;
            words >> url;
            std::getline(words, json);
            auto res = http.post_json(url, json, flow.token_type() + " " + flow.access_token(), http.last_dpop);
            std::cout << "REPLAY " << res.status << std::endl;
        } else if (command == "token-type") {
            std::cout << "TOKEN_TYPE " << flow.token_type() << std::endl;
        } else if (command == "dpop-cost") {
            int n = 0;
            words >> n;
            // A proof's signing input is about 330 bytes; the signature is nearly all its cost.
            const std::string input(330, 'a');
            std::vector<long long> us;
            for (int i = 0; i < std::max(n, 1); ++i) {
                auto start = std::chrono::steady_clock::now();
                if (signer.sign(input).size() != 64) break;
                us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
                                 .count());
            }
            std::sort(us.begin(), us.end());
            std::cout << "DPOP_SIGN_US " << (us.empty() ? -1 : us[us.size() / 2]) << std::endl;
        } else if (command == "quit") {
            break;
        } else {
            std::cout << "FAILED unknown command " << command << std::endl;
        }
    }
    return 0;
}
