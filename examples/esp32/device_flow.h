// The device side of LaventeCare's device authorization grant (RFC 8628), in portable C++17:
// no Arduino, no ESP-IDF. The sketch (esp32.ino) wires it to WiFiClientSecure and NVS;
// the test suite compiles it with the host's g++ and runs it against the real server through
// host/shim.cpp.
//
// What it does: asks for a user code, reports it (and verification_uri_complete) to the
// listener, polls the token endpoint at `interval`, slowing down by 5 s on `slow_down`
// (RFC 8628 §3.5), stores the refresh token, refreshes before the access token expires with
// jittered exponential back-off on network or server errors (presenting the same refresh token
// again: with the client's grace window on, a lost reply costs nothing), and reports
// "re-pair needed" when the provider refuses the refresh token (invalid_grant). With a
// `Signer` (Config::dpop) it proves possession of a P-256 key with every token request and
// every API call (DPoP, RFC 9449): the tokens are bound to that key, so a copied refresh or
// access token is worth nothing without it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lca {

using Form = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    // 0 when no reply arrived (no network, timeout, reply lost).
    int status = 0;
    std::string body;
    // The reply's DPoP-Nonce header ("" without one).
    std::string dpop_nonce;
};

// HTTP as the platform does it (HTTPClient on the ESP32, sockets on the host).
class Http {
  public:
    virtual ~Http() = default;
    // POST application/x-www-form-urlencoded, with a `DPoP: <dpop>` header unless it is "".
    virtual HttpResponse post_form(const std::string& url, const Form& form, const std::string& dpop) = 0;
    // POST application/json with `Authorization: <authorization>` ("Bearer …" or "DPoP …") and
    // a `DPoP: <dpop>` header unless it is "".
    virtual HttpResponse post_json(const std::string& url, const std::string& json, const std::string& authorization,
                                   const std::string& dpop) = 0;
};

// A P-256 key that stays on the device, for DPoP proofs (mbedTLS on the ESP32, OpenSSL on the
// host). Keep it where the refresh token is kept: the tokens are bound to it.
class Signer {
  public:
    virtual ~Signer() = default;
    // The public key's coordinates, 32 bytes each.
    virtual std::string public_x() = 0;
    virtual std::string public_y() = 0;
    // ECDSA P-256 over SHA-256 of `data`: r then s, 32 bytes each (not DER); "" on failure.
    virtual std::string sign(const std::string& data) = 0;
    // SHA-256 of `data`, 32 bytes (a proof's `ath` hashes the access token).
    virtual std::string sha256(const std::string& data) = 0;
    // Seconds since 1970 (a proof's `iat`; SNTP on the ESP32: the server allows 5 minutes).
    virtual long long unix_seconds() = 0;
};

// Persistent key-value storage (NVS on the ESP32, a file on the host).
class Storage {
  public:
    virtual ~Storage() = default;
    virtual std::optional<std::string> get(const std::string& key) = 0;
    virtual void put(const std::string& key, const std::string& value) = 0;
    virtual void erase(const std::string& key) = 0;
};

// Time and randomness (millis()/delay()/esp_random() on the ESP32).
class Clock {
  public:
    virtual ~Clock() = default;
    virtual uint64_t now_ms() = 0;
    virtual void sleep_ms(uint64_t ms) = 0;
    virtual uint32_t random() = 0;
};

enum class Event {
    Codes,         // detail: "user_code=… uri=…"
    Pending,       // authorization_pending
    SlowDown,      // slow_down: the interval grew by 5 s
    Tokens,        // paired: tokens received and the refresh token stored
    Refreshed,     // a refresh worked
    RetryLater,    // no reply or a server error: trying again after a back-off
    RePairNeeded,  // the refresh token was refused: the stored one is erased
    Denied,        // the user denied the request
    Expired,       // the device code expired before the user answered
    Failed,        // anything else (detail says what)
};

const char* event_name(Event e);

class Listener {
  public:
    virtual ~Listener() = default;
    virtual void on(Event event, const std::string& detail) = 0;
};

struct Config {
    std::string issuer;     // e.g. "https://id.example.com" (no trailing slash)
    std::string client_id;  // a public client with the device_code and refresh_token grants
    std::string scope = "openid offline_access";
    int max_refresh_attempts = 6;  // before giving up until the next call
    Signer* dpop = nullptr;        // DPoP-bind the tokens to this key (nullptr: bearer tokens)
};

enum class Outcome { Ok, RePairNeeded, Denied, Expired, Failed };

class DeviceFlow {
  public:
    DeviceFlow(Config config, Http& http, Storage& storage, Clock& clock, Listener& listener);

    // Whether a refresh token is stored (the device was paired before).
    bool paired();
    // RFC 8628 §3.1–3.5: codes, then polling until the user answers or the code expires.
    // `early_poll` (1-based; 0: none) is sent without waiting for the interval, which a test
    // uses to see slow_down.
    Outcome pair(int early_poll = 0);
    // One refresh (RFC 6749 §6), retried with jittered exponential back-off when no reply
    // arrives or the server fails; never retried on a refusal.
    Outcome refresh();
    // The current access token (empty before pairing or refreshing).
    const std::string& access_token() const { return access_token_; }
    // When (Clock::now_ms) to refresh: at 80 % of the access token's life, minus up to 10 %
    // of jitter so that a fleet does not refresh in step.
    uint64_t refresh_due_ms() const { return refresh_due_ms_; }
    // "DPoP" when the provider bound the access token to the Signer's key, else "Bearer".
    const std::string& token_type() const { return token_type_; }
    // POSTs a JSON reading to a satellite API with the access token (and a DPoP proof for a
    // bound one); the HTTP status.
    int post_telemetry(const std::string& url, const std::string& json);

  private:
    Outcome take_tokens(const HttpResponse& res, Event event);
    // A token request, with a DPoP proof when configured; asked for a nonce
    // (`use_dpop_nonce`), it sends a new proof with that nonce once.
    HttpResponse post_token(const Form& form);
    // A DPoP proof (RFC 9449 §4.2) for POST `url`; `access_token` non-empty adds its `ath`.
    std::string proof(const std::string& url, const std::string& access_token, bool with_nonce);

    Config config_;
    Http& http_;
    Storage& storage_;
    Clock& clock_;
    Listener& listener_;
    std::string access_token_;
    std::string token_type_ = "Bearer";
    // The provider's latest DPoP nonce.
    std::string dpop_nonce_;
    uint64_t refresh_due_ms_ = 0;
};

// A string or integer member of a flat JSON object (the token and device authorization
// responses are flat objects of strings and numbers). Hand-written, strict and small, so that
// the device logic needs no JSON library: it refuses what it does not understand.
std::optional<std::string> json_string(const std::string& body, const std::string& key);
std::optional<long long> json_integer(const std::string& body, const std::string& key);
// application/x-www-form-urlencoded encoding of one value.
std::string form_encode(const std::string& value);
// base64url without padding (RFC 4648 §5), as JOSE writes binary.
std::string base64url(const std::string& bytes);

}  // namespace lca
