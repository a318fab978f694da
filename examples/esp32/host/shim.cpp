// A host for the device logic (../device_flow.cpp), so the test suite runs the example against
// the real server: HTTP/1.1 over POSIX sockets (plain http on loopback; the ESP32 sketch uses
// TLS), storage in a file, the real clock. It prints one line per event on stdout and takes
// commands on stdin, one per line:
//
//   pair                 run the device flow until tokens, denial or expiry
//   refresh              one refresh (with its retries)
//   telemetry URL JSON   POST the reading JSON to URL with the access token; prints TELEMETRY <status>
//   quit
//
// Usage: shim ISSUER CLIENT_ID STORAGE_FILE [--drop-refresh-reply N] [--poll-fast]
//   --drop-refresh-reply N  the Nth refresh request is sent, and its reply thrown away (a lost
//                           response on flaky Wi-Fi)
//   --poll-fast             the second poll is sent at once, without waiting for the interval
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
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
                           const std::string& bearer) {
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
    if (!bearer.empty()) req << "Authorization: Bearer " << bearer << "\r\n";
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
    return res;
}

class SocketHttp : public lca::Http {
  public:
    int drop_refresh_reply = 0;  // the Nth refresh's reply is lost (0: none)

    lca::HttpResponse post_form(const std::string& url, const lca::Form& form) override {
        std::string body;
        bool refresh = false;
        for (const auto& [k, v] : form) {
            if (!body.empty()) body += '&';
            body += lca::form_encode(k) + "=" + lca::form_encode(v);
            if (k == "grant_type" && v == "refresh_token") refresh = true;
        }
        lca::HttpResponse res = exchange(url, "application/x-www-form-urlencoded", body, "");
        if (refresh && ++refreshes_ == drop_refresh_reply) {
            std::cout << "DROPPED_REPLY status=" << res.status << std::endl;
            return {};
        }
        return res;
    }

    lca::HttpResponse post_json(const std::string& url, const std::string& json, const std::string& bearer) override {
        return exchange(url, "application/json", json, bearer);
    }

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
    for (int i = 4; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--drop-refresh-reply" && i + 1 < argc) http.drop_refresh_reply = std::atoi(argv[++i]);
        else if (arg == "--poll-fast") early_poll = 2;
        else {
            std::cerr << "unknown argument " << arg << "\n";
            return 2;
        }
    }
    lca::Config config;
    config.issuer = argv[1];
    config.client_id = argv[2];
    config.max_refresh_attempts = 3;
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
        } else if (command == "quit") {
            break;
        } else {
            std::cout << "FAILED unknown command " << command << std::endl;
        }
    }
    return 0;
}
