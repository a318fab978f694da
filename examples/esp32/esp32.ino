// LaventeCare Auth on an ESP32: pair through the device authorization grant (RFC 8628), keep the
// refresh token in NVS, refresh before the access token expires, and post readings to a
// satellite API with the bearer token. The protocol logic is device_flow.cpp (shared with the
// host test); esp32.ino only wires it to the board.
//
// Board: any ESP32 with the Arduino core 3.x (its compiler takes C++17; the 2.x core does not). Libraries: WiFi, HTTPClient,
// WiFiClientSecure and Preferences, all part of the core; mbedTLS (part of ESP-IDF) for DPoP.
//
// DPoP (USE_DPOP 1): the tokens are bound to a P-256 key made on the board and kept in NVS, so a
// refresh token read out of flash is worth nothing elsewhere. The device logic that builds the
// proofs is tested on the host (tests/it/esp32.rs); BoardSigner below, the mbedTLS part, is not
// compiled by the test suite. The clock must be set (SNTP) for the proofs' `iat`.
#include <HTTPClient.h>
#include <Preferences.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <time.h>

#include "device_flow.h"

// ---- settings -------------------------------------------------------------------------
static const char* WIFI_SSID = "your-ssid";
static const char* WIFI_PASSWORD = "your-password";
static const char* ISSUER = "https://id.example.com";          // no trailing slash
static const char* CLIENT_ID = "paste the device client's id";  // client create --public ...
static const char* TELEMETRY_URL = "https://api.example.com/telemetry";
// The root certificate that signs ISSUER's and TELEMETRY_URL's certificates (PEM).
static const char* ROOT_CA = R"(-----BEGIN CERTIFICATE-----
...
-----END CERTIFICATE-----
)";
#define USE_DPOP 1  // bind the tokens to a key on the board (RFC 9449); 0: bearer tokens
// -----------------------------------------------------------------------------------------

class BoardHttp : public lca::Http {
  public:
    lca::HttpResponse post_form(const std::string& url, const lca::Form& form, const std::string& dpop) override {
        std::string body;
        for (const auto& kv : form) {
            if (!body.empty()) body += '&';
            body += lca::form_encode(kv.first) + "=" + lca::form_encode(kv.second);
        }
        return post(url, "application/x-www-form-urlencoded", body, "", dpop);
    }
    lca::HttpResponse post_json(const std::string& url, const std::string& json, const std::string& authorization,
                                const std::string& dpop) override {
        return post(url, "application/json", json, authorization, dpop);
    }

  private:
    lca::HttpResponse post(const std::string& url, const char* type, const std::string& body,
                           const std::string& authorization, const std::string& dpop) {
        lca::HttpResponse res;
        if (WiFi.status() != WL_CONNECTED) return res;  // no reply: the logic backs off and retries
        WiFiClientSecure tls;
        tls.setCACert(ROOT_CA);
        HTTPClient http;
        http.setTimeout(10000);
        if (!http.begin(tls, url.c_str())) return res;
        const char* wanted[] = {"DPoP-Nonce"};
        http.collectHeaders(wanted, 1);
        http.addHeader("Content-Type", type);
        if (!authorization.empty()) http.addHeader("Authorization", authorization.c_str());
        if (!dpop.empty()) http.addHeader("DPoP", dpop.c_str());
        int status = http.POST(reinterpret_cast<uint8_t*>(const_cast<char*>(body.data())), body.size());
        if (status > 0) {
            res.status = status;
            res.body = http.getString().c_str();
            res.dpop_nonce = http.header("DPoP-Nonce").c_str();
        }
        http.end();
        return res;
    }
};

class NvsStorage : public lca::Storage {
  public:
    std::optional<std::string> get(const std::string& key) override {
        prefs_.begin("lca", true);
        String v = prefs_.getString(key.c_str(), "");
        prefs_.end();
        if (v.length() == 0) return std::nullopt;
        return std::string(v.c_str());
    }
    void put(const std::string& key, const std::string& value) override {
        prefs_.begin("lca", false);
        prefs_.putString(key.c_str(), value.c_str());
        prefs_.end();
    }
    void erase(const std::string& key) override {
        prefs_.begin("lca", false);
        prefs_.remove(key.c_str());
        prefs_.end();
    }

  private:
    Preferences prefs_;
};

class BoardClock : public lca::Clock {
  public:
    uint64_t now_ms() override { return millis(); }
    void sleep_ms(uint64_t ms) override { delay(ms); }
    uint32_t random() override { return esp_random(); }
};

// The board's DPoP key, with mbedTLS: made once, kept in NVS (as its DER private key, hex).
class BoardSigner : public lca::Signer {
  public:
    bool begin(lca::Storage& nvs) {
        mbedtls_pk_init(&pk_);
        mbedtls_entropy_init(&entropy_);
        mbedtls_ctr_drbg_init(&drbg_);
        if (mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, nullptr, 0) != 0) return false;
        if (auto stored = nvs.get("dpop_key")) {
            std::string der = unhex(*stored);
            if (mbedtls_pk_parse_key(&pk_, reinterpret_cast<const unsigned char*>(der.data()), der.size(), nullptr, 0,
                                     mbedtls_ctr_drbg_random, &drbg_) == 0)
                return load_public();
            mbedtls_pk_free(&pk_);
            mbedtls_pk_init(&pk_);
        }
        if (mbedtls_pk_setup(&pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
            mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk_), mbedtls_ctr_drbg_random, &drbg_) != 0)
            return false;
        unsigned char buf[256];
        int n = mbedtls_pk_write_key_der(&pk_, buf, sizeof buf);  // written at the end of buf
        if (n <= 0) return false;
        nvs.put("dpop_key", hex(std::string(reinterpret_cast<char*>(buf + sizeof buf - n), n)));
        return load_public();
    }
    std::string public_x() override { return x_; }
    std::string public_y() override { return y_; }
    std::string sign(const std::string& data) override {
        unsigned char hash[32], der[80];
        size_t len = 0;
        mbedtls_sha256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), hash, 0);
        if (mbedtls_pk_sign(&pk_, MBEDTLS_MD_SHA256, hash, sizeof hash, der, sizeof der, &len, mbedtls_ctr_drbg_random,
                            &drbg_) != 0)
            return "";
        return der_to_rs(der, len);
    }
    std::string sha256(const std::string& data) override {
        unsigned char hash[32];
        mbedtls_sha256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), hash, 0);
        return std::string(reinterpret_cast<char*>(hash), sizeof hash);
    }
    long long unix_seconds() override { return static_cast<long long>(time(nullptr)); }

  private:
    // The public point 04 || x || y, written at the end of the buffer by mbedtls_pk_write_pubkey.
    bool load_public() {
        unsigned char buf[80];
        unsigned char* end = buf + sizeof buf;
        int n = mbedtls_pk_write_pubkey(&end, buf, &pk_);
        if (n != 65 || end[0] != 0x04) return false;
        x_.assign(reinterpret_cast<char*>(end + 1), 32);
        y_.assign(reinterpret_cast<char*>(end + 33), 32);
        return true;
    }
    // ECDSA's DER SEQUENCE { INTEGER r, INTEGER s } to JOSE's fixed-width r || s.
    static std::string der_to_rs(const unsigned char* der, size_t len) {
        std::string out;
        size_t i = 2;  // SEQUENCE and its one-byte length (a P-256 signature is under 128 bytes)
        if (len < 8 || der[0] != 0x30) return "";
        for (int part = 0; part < 2; ++part) {
            if (i + 2 > len || der[i] != 0x02) return "";
            size_t n = der[i + 1];
            const unsigned char* v = der + i + 2;
            if (i + 2 + n > len) return "";
            while (n > 32 && *v == 0) {  // a leading zero keeps a high bit positive
                ++v;
                --n;
            }
            if (n > 32) return "";
            out.append(32 - n, '\0');
            out.append(reinterpret_cast<const char*>(v), n);
            i += 2 + der[i + 1];
        }
        return out;
    }
    static std::string hex(const std::string& bytes) {
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (unsigned char c : bytes) {
            out += digits[c >> 4];
            out += digits[c & 15];
        }
        return out;
    }
    static std::string unhex(const std::string& text) {
        std::string out;
        for (size_t i = 0; i + 1 < text.size(); i += 2) out += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
        return out;
    }

    mbedtls_pk_context pk_;
    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;
    std::string x_, y_;
};

class SerialListener : public lca::Listener {
  public:
    void on(lca::Event event, const std::string& detail) override {
        Serial.printf("%s %s\n", lca::event_name(event), detail.c_str());
        if (event == lca::Event::Codes) {
            // detail is "user_code=XXXX-XXXX uri=https://…": show it to the person. A board with
            // a display would draw `uri` as a QR code here.
            Serial.println("Open the link above, or the device page, and enter the code.");
        }
    }
};

static BoardHttp http;
static NvsStorage storage;
static BoardClock clock_;
static SerialListener listener;
static BoardSigner signer;
static lca::DeviceFlow* flow = nullptr;

void setup() {
    Serial.begin(115200);
    WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
    while (WiFi.status() != WL_CONNECTED) delay(500);
    lca::Config config;
    config.issuer = ISSUER;
    config.client_id = CLIENT_ID;
#if USE_DPOP
    configTime(0, 0, "pool.ntp.org");  // DPoP proofs carry the time
    while (time(nullptr) < 1700000000) delay(200);
    if (signer.begin(storage)) config.dpop = &signer;
#endif
    flow = new lca::DeviceFlow(config, http, storage, clock_, listener);
    // A stored refresh token means the device was paired before: refresh it; else pair.
    if (!flow->paired() || flow->refresh() == lca::Outcome::RePairNeeded) {
        while (flow->pair() != lca::Outcome::Ok) delay(5000);
    }
}

void loop() {
    if (millis() >= flow->refresh_due_ms()) {
        if (flow->refresh() == lca::Outcome::RePairNeeded) {
            while (flow->pair() != lca::Outcome::Ok) delay(5000);
        }
    }
    char reading[64];
    snprintf(reading, sizeof reading, "{\"celsius\":%.1f}", temperatureRead());
    int status = flow->post_telemetry(TELEMETRY_URL, reading);
    Serial.printf("TELEMETRY %d\n", status);
    delay(60000);
}
