// See device_flow.h.
#include "device_flow.h"

#include <cctype>
#include <cstdio>

namespace lca {

namespace {

const char* const kRefreshKey = "refresh_token";
const char* const kDeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";

// A parsed flat JSON object: each member's key and its value as text (strings unescaped,
// numbers and literals as written). Nested objects or arrays make the whole parse fail.
struct Member {
    std::string key;
    std::string value;
    bool is_string;
};

bool parse_string(const std::string& s, size_t& i, std::string& out) {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size()) {
        char c = s[i++];
        if (c == '"') return true;
        if (static_cast<unsigned char>(c) < 0x20) return false;
        if (c != '\\') {
            out.push_back(c);
            continue;
        }
        if (i >= s.size()) return false;
        char e = s[i++];
        switch (e) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                // Our responses are ASCII; other escapes are kept only when they are ASCII.
                if (i + 4 > s.size()) return false;
                unsigned code = 0;
                for (int k = 0; k < 4; ++k) {
                    char h = s[i++];
                    if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
                    code = code * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
                }
                if (code >= 0x80) return false;
                out.push_back(static_cast<char>(code));
                break;
            }
            default: return false;
        }
    }
    return false;
}

void skip_ws(const std::string& s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

bool parse_object(const std::string& s, std::vector<Member>& out) {
    size_t i = 0;
    skip_ws(s, i);
    if (i >= s.size() || s[i] != '{') return false;
    ++i;
    skip_ws(s, i);
    if (i < s.size() && s[i] == '}') return true;
    while (true) {
        Member m;
        skip_ws(s, i);
        if (!parse_string(s, i, m.key)) return false;
        skip_ws(s, i);
        if (i >= s.size() || s[i] != ':') return false;
        ++i;
        skip_ws(s, i);
        if (i >= s.size()) return false;
        if (s[i] == '"') {
            m.is_string = true;
            if (!parse_string(s, i, m.value)) return false;
        } else {
            m.is_string = false;
            while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '+' || s[i] == '.')) {
                m.value.push_back(s[i++]);
            }
            if (m.value.empty()) return false;  // an object or array: not ours to read
        }
        out.push_back(std::move(m));
        skip_ws(s, i);
        if (i < s.size() && s[i] == ',') {
            ++i;
            continue;
        }
        if (i < s.size() && s[i] == '}') return true;
        return false;
    }
}

const Member* find(const std::vector<Member>& members, const std::string& key) {
    for (const auto& m : members)
        if (m.key == key) return &m;
    return nullptr;
}

}  // namespace

std::optional<std::string> json_string(const std::string& body, const std::string& key) {
    std::vector<Member> members;
    if (!parse_object(body, members)) return std::nullopt;
    const Member* m = find(members, key);
    if (m == nullptr || !m->is_string) return std::nullopt;
    return m->value;
}

std::optional<long long> json_integer(const std::string& body, const std::string& key) {
    std::vector<Member> members;
    if (!parse_object(body, members)) return std::nullopt;
    const Member* m = find(members, key);
    if (m == nullptr || m->is_string || m->value.empty() || m->value.size() > 18) return std::nullopt;
    long long n = 0;
    for (char c : m->value) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

std::string form_encode(const std::string& value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string base64url(const std::string& bytes) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i + 1 == bytes.size()) {
        const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
    } else if (i + 2 == bytes.size()) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
    }
    return out;
}

namespace {

// Whether a nonce (or a URL) can go into a JSON string as it is: printable ASCII without `"`
// or `\` (the server's nonces are base64url; anything else is not ours to sign).
bool json_safe(const std::string& s) {
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
    return true;
}

}  // namespace

const char* event_name(Event e) {
    switch (e) {
        case Event::Codes: return "CODES";
        case Event::Pending: return "PENDING";
        case Event::SlowDown: return "SLOW_DOWN";
        case Event::Tokens: return "TOKENS";
        case Event::Refreshed: return "REFRESHED";
        case Event::RetryLater: return "RETRY_LATER";
        case Event::RePairNeeded: return "REPAIR_NEEDED";
        case Event::Denied: return "DENIED";
        case Event::Expired: return "EXPIRED";
        case Event::Failed: return "FAILED";
    }
    return "FAILED";
}

DeviceFlow::DeviceFlow(Config config, Http& http, Storage& storage, Clock& clock, Listener& listener)
    : config_(std::move(config)), http_(http), storage_(storage), clock_(clock), listener_(listener) {}

bool DeviceFlow::paired() { return storage_.get(kRefreshKey).has_value(); }

Outcome DeviceFlow::pair(int early_poll) {
    HttpResponse res = http_.post_form(config_.issuer + "/device_authorization",
                                       {{"client_id", config_.client_id}, {"scope", config_.scope}}, "");
    auto device_code = json_string(res.body, "device_code");
    auto user_code = json_string(res.body, "user_code");
    auto uri = json_string(res.body, "verification_uri_complete");
    if (res.status != 200 || !device_code || !user_code) {
        listener_.on(Event::Failed, "device_authorization: HTTP " + std::to_string(res.status));
        return Outcome::Failed;
    }
    long long interval = json_integer(res.body, "interval").value_or(5);
    long long expires_in = json_integer(res.body, "expires_in").value_or(600);
    listener_.on(Event::Codes, "user_code=" + *user_code + " uri=" + uri.value_or(""));

    const uint64_t deadline = clock_.now_ms() + static_cast<uint64_t>(expires_in) * 1000;
    for (int n = 1; clock_.now_ms() < deadline; ++n) {
        if (n != early_poll) clock_.sleep_ms(static_cast<uint64_t>(interval) * 1000);
        HttpResponse poll =
            post_token({{"grant_type", kDeviceGrant}, {"device_code", *device_code}, {"client_id", config_.client_id}});
        if (poll.status == 200) return take_tokens(poll, Event::Tokens);
        auto error = json_string(poll.body, "error").value_or("");
        if (error == "authorization_pending") {
            listener_.on(Event::Pending, "");
        } else if (error == "slow_down") {
            interval += 5;  // RFC 8628 §3.5, for this and every later poll
            listener_.on(Event::SlowDown, "interval=" + std::to_string(interval));
        } else if (error == "access_denied") {
            listener_.on(Event::Denied, "");
            return Outcome::Denied;
        } else if (error == "expired_token") {
            listener_.on(Event::Expired, "");
            return Outcome::Expired;
        } else if (poll.status == 0 || poll.status >= 500) {
            listener_.on(Event::RetryLater, "poll: HTTP " + std::to_string(poll.status));
        } else {
            listener_.on(Event::Failed, "poll: " + error);
            return Outcome::Failed;
        }
    }
    listener_.on(Event::Expired, "");
    return Outcome::Expired;
}

Outcome DeviceFlow::refresh() {
    auto stored = storage_.get(kRefreshKey);
    if (!stored) {
        listener_.on(Event::RePairNeeded, "no refresh token stored");
        return Outcome::RePairNeeded;
    }
    uint64_t backoff_ms = 1000;
    for (int attempt = 0; attempt < config_.max_refresh_attempts; ++attempt) {
        HttpResponse res =
            post_token({{"grant_type", "refresh_token"}, {"refresh_token", *stored}, {"client_id", config_.client_id}});
        if (res.status == 200) return take_tokens(res, Event::Refreshed);
        auto error = json_string(res.body, "error").value_or("");
        if (error == "invalid_grant") {
            // Revoked, expired, or already used outside the grace window: only a new pairing helps.
            storage_.erase(kRefreshKey);
            access_token_.clear();
            listener_.on(Event::RePairNeeded, "");
            return Outcome::RePairNeeded;
        }
        if (res.status != 0 && res.status < 500 && res.status != 429) {
            listener_.on(Event::Failed, "refresh: HTTP " + std::to_string(res.status) + " " + error);
            return Outcome::Failed;
        }
        // No reply (or the server is busy): the same token again after a jittered back-off.
        listener_.on(Event::RetryLater, "refresh: HTTP " + std::to_string(res.status));
        clock_.sleep_ms(backoff_ms / 2 + clock_.random() % (backoff_ms / 2 + 1));
        backoff_ms = backoff_ms * 2 > 60000 ? 60000 : backoff_ms * 2;
    }
    return Outcome::Failed;
}

Outcome DeviceFlow::take_tokens(const HttpResponse& res, Event event) {
    auto access = json_string(res.body, "access_token");
    auto refresh = json_string(res.body, "refresh_token");
    auto expires_in = json_integer(res.body, "expires_in");
    if (!access || !expires_in) {
        listener_.on(Event::Failed, "a token response without access_token or expires_in");
        return Outcome::Failed;
    }
    access_token_ = *access;
    token_type_ = json_string(res.body, "token_type").value_or("Bearer") == "DPoP" ? "DPoP" : "Bearer";
    if (refresh) storage_.put(kRefreshKey, *refresh);
    const uint64_t life_ms = static_cast<uint64_t>(*expires_in) * 1000;
    const uint64_t jitter_ms = life_ms / 10 == 0 ? 0 : clock_.random() % (life_ms / 10);
    refresh_due_ms_ = clock_.now_ms() + life_ms * 8 / 10 - jitter_ms;
    listener_.on(event, "expires_in=" + std::to_string(*expires_in));
    return Outcome::Ok;
}

int DeviceFlow::post_telemetry(const std::string& url, const std::string& json) {
    if (token_type_ == "DPoP" && config_.dpop != nullptr) {
        // The API's own nonce, if it wanted one, is not the provider's: none is sent.
        return http_.post_json(url, json, "DPoP " + access_token_, proof(url, access_token_, false)).status;
    }
    return http_.post_json(url, json, "Bearer " + access_token_, "").status;
}

HttpResponse DeviceFlow::post_token(const Form& form) {
    const std::string url = config_.issuer + "/token";
    for (int attempt = 0;; ++attempt) {
        const std::string dpop = config_.dpop != nullptr ? proof(url, "", true) : "";
        HttpResponse res = http_.post_form(url, form, dpop);
        const bool fresh_nonce = !res.dpop_nonce.empty() && res.dpop_nonce != dpop_nonce_ && json_safe(res.dpop_nonce);
        if (fresh_nonce) dpop_nonce_ = res.dpop_nonce;
        // RFC 9449 §8: the provider wants a nonce in the proof; one more try carries it.
        if (attempt == 0 && config_.dpop != nullptr && fresh_nonce && res.status == 400 &&
            json_string(res.body, "error").value_or("") == "use_dpop_nonce") {
            continue;
        }
        return res;
    }
}

std::string DeviceFlow::proof(const std::string& url, const std::string& access_token, bool with_nonce) {
    Signer& key = *config_.dpop;
    if (!json_safe(url)) return "";
    const std::string header = "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" +
                               base64url(key.public_x()) + "\",\"y\":\"" + base64url(key.public_y()) + "\"}}";
    char jti[40];
    std::snprintf(jti, sizeof jti, "%08x%08x%08x%08x", static_cast<unsigned>(clock_.random()),
                  static_cast<unsigned>(clock_.random()), static_cast<unsigned>(clock_.random()),
                  static_cast<unsigned>(clock_.random()));
    std::string claims = std::string("{\"jti\":\"") + jti + "\",\"htm\":\"POST\",\"htu\":\"" + url +
                         "\",\"iat\":" + std::to_string(key.unix_seconds());
    if (with_nonce && !dpop_nonce_.empty()) claims += ",\"nonce\":\"" + dpop_nonce_ + "\"";
    if (!access_token.empty()) claims += ",\"ath\":\"" + base64url(key.sha256(access_token)) + "\"";
    claims += "}";
    const std::string input = base64url(header) + "." + base64url(claims);
    const std::string signature = key.sign(input);
    if (signature.size() != 64) return "";
    return input + "." + base64url(signature);
}

}  // namespace lca
