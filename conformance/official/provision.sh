#!/usr/bin/env bash
# Provisions a LaventeCare Auth deployment for the OpenID Foundation conformance suite and
# prints the suite's JSON configuration, filled in. See README.md beside this file.
#
# It creates, through the laventecare-auth command line: a tenant, a test user (password,
# profile, verified email) who is a viewer of it, and three confidential clients whose
# redirect and post-logout redirect URIs are the suite's for the alias:
#   client              client_secret_basic  (the plans' "client")
#   client2             client_secret_basic  (the plans' "client2": oidcc-refresh-token)
#   client_secret_post  client_secret_post   (oidcc-server-client-secret-post, via "override")
#
# The command line settings (LCA_DATA_DIR, DATABASE_URL, DATABASE_RUNTIME_URL, LCA_MASTER_KEY,
# ...) come from the environment, as for any laventecare-auth command. Run it on the machine
# of the deployment, with the same settings as the server, while the server runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plans=(oidcc-basic-certification-test-plan oidcc-config-certification-test-plan
       oidcc-formpost-basic-certification-test-plan oidcc-rp-initiated-logout-certification-test-plan)

usage() {
    cat <<'USAGE'
Usage: provision.sh --alias ALIAS --issuer URL [options]

  --alias ALIAS     the alias of the suite's test configuration ([A-Za-z0-9._-], at most 64)
  --issuer URL      the deployment's issuer (LCA_ISSUER), e.g. https://auth.example.com
  --suite URL       the conformance suite's address (default https://www.certification.openid.net;
                    a self-hosted suite: https://localhost.emobix.co.uk:8443)
  --tenant SLUG     the tenant to create (default: oidf- and the alias, lowercased)
  --email EMAIL     the test user's email (default: oidf-test@<issuer host>); also the login_hint
  --plan PLAN       the plan whose configuration goes to standard output
                    (default oidcc-basic-certification-test-plan)
  --out DIR         also write every plan's configuration to DIR/<plan>.json (mode 600)
  --cli PATH        the laventecare-auth binary (default: $LCA_CLI, else laventecare-auth on PATH)
  --keep-pkce       leave PKCE required for the three clients (see README.md: most modules then fail)
  --browser         add the suite's browser automation (browser.json: signs in as the test user,
                    allows, confirms sign-outs, takes the screenshots); puts the password in the
                    configuration

The test user's password is LCA_TEST_PASSWORD when set, else a generated one; it is printed
once on standard error with the rest of what to know. The configuration (which holds the
client secrets) goes to standard output.
USAGE
}

die() { echo "provision.sh: $*" >&2; exit 1; }

alias_name="" issuer="" suite="https://www.certification.openid.net" tenant="" email=""
plan="oidcc-basic-certification-test-plan" out="" cli="${LCA_CLI:-laventecare-auth}" keep_pkce=0 browser=0
while [ $# -gt 0 ]; do
    case "$1" in
        --alias) alias_name="${2-}"; shift 2 ;;
        --issuer) issuer="${2-}"; shift 2 ;;
        --suite) suite="${2-}"; shift 2 ;;
        --tenant) tenant="${2-}"; shift 2 ;;
        --email) email="${2-}"; shift 2 ;;
        --plan) plan="${2-}"; shift 2 ;;
        --out) out="${2-}"; shift 2 ;;
        --cli) cli="${2-}"; shift 2 ;;
        --keep-pkce) keep_pkce=1; shift ;;
        --browser) browser=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

command -v python3 >/dev/null || die "python3 is needed (to read the command line's JSON)"
command -v "$cli" >/dev/null || die "no laventecare-auth binary at '$cli' (use --cli PATH or LCA_CLI)"

# The alias becomes a path segment of the suite's URLs (/test/a/<alias>/callback): keep it to
# characters that need no encoding, so the registered URIs are exactly what the suite sends.
[[ "$alias_name" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--alias must be 1-64 of A-Z a-z 0-9 . _ -"
[[ "$issuer" =~ ^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$ ]] || die "--issuer must be an http(s) URL without query or fragment"
issuer="${issuer%/}"
suite="${suite%/}"
[[ "$suite" =~ ^https://[^/?#[:space:]]+$ ]] || die "--suite must be https://host[:port] (the suite only runs on https)"
case "$issuer" in
    https://*) ;;
    *) echo "provision.sh: warning: $issuer is not https; the suite requires https on every endpoint" >&2 ;;
esac
printf '%s\n' "${plans[@]}" | grep -qx -- "$plan" || die "--plan must be one of: ${plans[*]}"

host="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname)' "$issuer")"
if [ -z "$tenant" ]; then
    # A slug is 1-63 of a-z, 0-9 and '-', not ending with '-'.
    tenant="oidf-$(printf '%s' "$alias_name" | tr 'A-Z._' 'a-z--')"
    tenant="${tenant:0:63}"
    while [ "${tenant%-}" != "$tenant" ]; do tenant="${tenant%-}"; done
fi
[ -n "$email" ] || email="oidf-test@$host"
password="${LCA_TEST_PASSWORD:-$(python3 -c 'import secrets; print("Oidf-" + secrets.token_urlsafe(24))')}"

base="$suite/test/a/$alias_name"
redirect_uri="$base/callback"
post_logout_uri="$base/post_logout_redirect"

# field FIELD: one field of the JSON object on standard input (the command line's --json output).
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

run() { "$cli" "$@"; }

echo "provision.sh: tenant $tenant" >&2
# Each step stops the script when the command line refuses (its message is on stderr).
tenant_json="$(run tenant create --slug "$tenant" --name "OpenID conformance ($alias_name)" --json)"
tenant_id="$(field tenant_id <<<"$tenant_json")"

echo "provision.sh: user $email" >&2
# Users are global: one from an earlier run (for another alias) is reused, password unchanged.
new_user=1
if ! err="$(printf '%s\n' "$password" | run user create --email "$email" --password-stdin --json 2>&1 >/dev/null)"; then
    case "$err" in
        *"already exists"*) new_user=0; echo "provision.sh: $email exists: reused, its password unchanged" >&2 ;;
        *) echo "$err" >&2; exit 1 ;;
    esac
fi
if [ "$new_user" = 0 ] && [ "$browser" = 1 ] && [ -z "${LCA_TEST_PASSWORD-}" ]; then
    die "--browser signs in as $email, which exists: set LCA_TEST_PASSWORD to its password (tenant $tenant was created; use another --tenant next time)"
fi
# Every claim of the profile and email scopes has a value, so oidcc-scope-profile,
# oidcc-scope-email and oidcc-claims-essential (which asks for `name`) see them.
run user set-profile --email "$email" --name "Buffy Summers" --given-name Buffy --family-name Summers \
    --preferred-username buffy --locale en-US --zoneinfo America/Los_Angeles --email-verified true \
    --json >/dev/null
# A viewer: an administrator of any tenant must pass a second factor, which the suite cannot.
run member add --tenant "$tenant" --email "$email" --role viewer --json >/dev/null

# create_client NAME [AUTH_METHOD]: prints the command line's JSON for a new client. The suite's
# authorization requests carry no PKCE (only oidcc-ensure-request-with-valid-pkce-succeeds sends
# it), so the clients are registered with --pkce-optional unless --keep-pkce is given; they still
# accept PKCE, and still refuse `plain` and a verifier without a challenge.
create_client() {
    local extra=()
    [ -z "${2-}" ] || extra=(--auth-method "$2")
    [ "$keep_pkce" = 1 ] || extra+=(--pkce-optional)
    run client create --tenant "$tenant" --name "$1" --grant authorization_code refresh_token \
        --redirect-uri "$redirect_uri" --post-logout-redirect-uri "$post_logout_uri" "${extra[@]}" --json
}
echo "provision.sh: clients" >&2
c1="$(create_client "Conformance client ($alias_name)")"
c2="$(create_client "Conformance client2 ($alias_name)")"
cp="$(create_client "Conformance client_secret_post ($alias_name)" client_secret_post)"
client_id="$(field client_id <<<"$c1")"; client_secret="$(field client_secret <<<"$c1")"
client2_id="$(field client_id <<<"$c2")"; client2_secret="$(field client_secret <<<"$c2")"
post_id="$(field client_id <<<"$cp")"; post_secret="$(field client_secret <<<"$cp")"

# fill PLAN: the plan's template with every @NAME@ replaced (inside JSON strings, so each value
# is escaped by the JSON encoder, not pasted into the text); with --browser, and for a plan that
# signs in, browser.json's entries become the "browser" key and each module's override's.
fill() {
    local automate=""
    [ "$browser" = 0 ] || [ "$1" = oidcc-config-certification-test-plan ] || automate="$here/browser.json"
    ALIAS="$alias_name" ISSUER="$issuer" LOGIN_HINT="$email" PASSWORD="$password" BROWSER="$automate" \
    CLIENT_ID="$client_id" CLIENT_SECRET="$client_secret" CLIENT2_ID="$client2_id" CLIENT2_SECRET="$client2_secret" \
    POST_CLIENT_ID="$post_id" POST_CLIENT_SECRET="$post_secret" \
    python3 - "$here/$1.json" <<'PY'
import json, os, re, sys

names = ["ALIAS", "ISSUER", "LOGIN_HINT", "CLIENT_ID", "CLIENT_SECRET", "CLIENT2_ID", "CLIENT2_SECRET",
         "POST_CLIENT_ID", "POST_CLIENT_SECRET", "PASSWORD"]
values = {n: os.environ[n] for n in names}

def value(m):
    if m.group(1) not in values:
        sys.exit("unknown placeholder " + m.group(0) + " in " + sys.argv[1])
    return values[m.group(1)]

def sub(v):
    if isinstance(v, str):
        return re.sub(r"@([A-Z0-9_]+)@", value, v)
    if isinstance(v, list):
        return [sub(x) for x in v]
    if isinstance(v, dict):
        return {k: sub(x) for k, x in v.items()}
    return v

with open(sys.argv[1]) as f:
    config = sub(json.load(f))
if os.environ["BROWSER"]:
    with open(os.environ["BROWSER"]) as f:
        automation = sub(json.load(f))
    entries = automation["entries"]
    config["browser"] = [entries[n] for n in automation["browser"]]
    for module, used in automation["override"].items():
        config.setdefault("override", {}).setdefault(module, {})["browser"] = [entries[n] for n in used]
print(json.dumps(config, indent=4))
PY
}

if [ -n "$out" ]; then
    mkdir -p "$out"
    for p in "${plans[@]}"; do
        (umask 077; fill "$p" > "$out/$p.json")
    done
fi

cat >&2 <<MSG

provision.sh: done. In the suite ($suite):
  alias:                     $alias_name
  registered redirect URI:   $redirect_uri
  post-logout redirect URI:  $post_logout_uri
  test user:                 $email
  test user's password:      $([ "$new_user" = 1 ] && echo "$password   (shown only now)" || echo "unchanged (the user existed)")
  tenant:                    $tenant ($tenant_id)
The configuration of $plan follows on standard output.
MSG
[ -z "$out" ] || echo "provision.sh: every plan's configuration is in $out/" >&2
fill "$plan"
