// LaventeCare Auth on an ESP32: pair through the device authorization grant (RFC 8628), keep the
// refresh token in NVS, refresh before the access token expires, and post readings to a
// satellite API with the bearer token. The protocol logic is device_flow.cpp (shared with the
// host test); esp32.ino only wires it to the board.
//
// Board: any ESP32 with the Arduino core 3.x (its compiler takes C++17; the 2.x core does not). Libraries: WiFi, HTTPClient,
// WiFiClientSecure and Preferences, all part of the core.
#include <HTTPClient.h>
#include <Preferences.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>

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
// -----------------------------------------------------------------------------------------

class BoardHttp : public lca::Http {
  public:
    lca::HttpResponse post_form(const std::string& url, const lca::Form& form) override {
        std::string body;
        for (const auto& kv : form) {
            if (!body.empty()) body += '&';
            body += lca::form_encode(kv.first) + "=" + lca::form_encode(kv.second);
        }
        return post(url, "application/x-www-form-urlencoded", body, "");
    }
    lca::HttpResponse post_json(const std::string& url, const std::string& json, const std::string& bearer) override {
        return post(url, "application/json", json, bearer);
    }

  private:
    lca::HttpResponse post(const std::string& url, const char* type, const std::string& body, const std::string& bearer) {
        lca::HttpResponse res;
        if (WiFi.status() != WL_CONNECTED) return res;  // no reply: the logic backs off and retries
        WiFiClientSecure tls;
        tls.setCACert(ROOT_CA);
        HTTPClient http;
        http.setTimeout(10000);
        if (!http.begin(tls, url.c_str())) return res;
        http.addHeader("Content-Type", type);
        if (!bearer.empty()) http.addHeader("Authorization", ("Bearer " + bearer).c_str());
        int status = http.POST(reinterpret_cast<uint8_t*>(const_cast<char*>(body.data())), body.size());
        if (status > 0) {
            res.status = status;
            res.body = http.getString().c_str();
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
static lca::DeviceFlow* flow = nullptr;

void setup() {
    Serial.begin(115200);
    WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
    while (WiFi.status() != WL_CONNECTED) delay(500);
    lca::Config config;
    config.issuer = ISSUER;
    config.client_id = CLIENT_ID;
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
