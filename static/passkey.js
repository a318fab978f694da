// Passkeys on the hosted pages (WebAuthn): a button with `data-passkey` ("register" or
// "sign-in") asks its `data-begin` URL for the ceremony's options, hands them to the browser's
// authenticator, and posts the answer to `data-finish`; the server answers where to go next
// (`{"next": …}`) or a sentence to show (`{"error": …}`). A separate file, so the pages'
// Content-Security-Policy needs no inline script. Binary fields travel as base64url.
(function () {
  "use strict";

  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function encode(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // A sentence the server chose to show.
  class Problem extends Error {}

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer = {};
    try {
      answer = await res.json();
    } catch (e) {
      answer = {};
    }
    if (answer.next) {
      window.location.assign(answer.next);
      return null;
    }
    if (!res.ok) throw new Problem(answer.error || "");
    return answer;
  }

  function creationOptions(options) {
    const key = options.publicKey;
    key.challenge = decode(key.challenge);
    key.user.id = decode(key.user.id);
    for (const c of key.excludeCredentials || []) c.id = decode(c.id);
    return { publicKey: key };
  }

  function requestOptions(options) {
    const key = options.publicKey;
    key.challenge = decode(key.challenge);
    for (const c of key.allowCredentials || []) c.id = decode(c.id);
    return { publicKey: key };
  }

  function registration(c) {
    return {
      id: c.id,
      rawId: encode(c.rawId),
      type: c.type,
      response: {
        attestationObject: encode(c.response.attestationObject),
        clientDataJSON: encode(c.response.clientDataJSON),
      },
      extensions: c.getClientExtensionResults(),
    };
  }

  function assertion(c) {
    return {
      id: c.id,
      rawId: encode(c.rawId),
      type: c.type,
      response: {
        authenticatorData: encode(c.response.authenticatorData),
        clientDataJSON: encode(c.response.clientDataJSON),
        signature: encode(c.response.signature),
        userHandle: c.response.userHandle ? encode(c.response.userHandle) : null,
      },
      extensions: {},
    };
  }

  async function ceremony(button) {
    const base = { csrf: button.dataset.csrf, req: button.dataset.req || "" };
    if (button.dataset.passkey === "register") {
      const name = document.getElementById("passkey-name").value;
      const options = await post(button.dataset.begin, Object.assign({ name: name }, base));
      if (!options) return;
      const credential = await navigator.credentials.create(creationOptions(options));
      await post(button.dataset.finish, Object.assign({ name: name, credential: registration(credential) }, base));
    } else {
      const options = await post(button.dataset.begin, base);
      if (!options) return;
      const credential = await navigator.credentials.get(requestOptions(options));
      await post(button.dataset.finish, Object.assign({ credential: assertion(credential) }, base));
    }
  }

  for (const button of document.querySelectorAll("[data-passkey]")) {
    button.addEventListener("click", async function () {
      const problem = document.getElementById("passkey-problem");
      const show = function (text) {
        problem.textContent = text;
        problem.hidden = false;
      };
      if (!window.PublicKeyCredential || !navigator.credentials) {
        show(button.dataset.unsupported);
        return;
      }
      problem.hidden = true;
      button.disabled = true;
      try {
        await ceremony(button);
      } catch (e) {
        // The server's sentence, or ours for the browser's own refusals (cancelled, timed out).
        show(e instanceof Problem && e.message ? e.message : button.dataset.failed);
      } finally {
        button.disabled = false;
      }
    });
  }
})();
