#!/usr/bin/env bash
# A rough load measurement of the outbound pipeline on Postgres (fsync on), until the
# benchmark tool of the benchmark issue replaces it. Usage: scripts/rough-load.sh SHARDS SECONDS
# Prints wrk's accept figures, then the end-to-end rate: messages acknowledged by the sandbox
# per second, from the first acceptance to the last acknowledgement.
set -euo pipefail
shards=${1:-1}; seconds=${2:-20}; connections=${CONNECTIONS:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/premise-load.XXXXXX); chmod 755 "$work"
port=55432; api=18480
bin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
pgrun() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
pgrun "$bin/initdb" -U premise --auth=trust -D "$work/pg" >/dev/null
pgrun "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -o "-p $port -k $work -c max_connections=200" -w start >/dev/null
cleanup() { kill "$server" 2>/dev/null || true; pgrun "$bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
psql() { command psql -h 127.0.0.1 -p $port -U premise -d postgres -qtA "$@"; }

(cd "$root" && cargo build --release -q)
PREMISE_LOG__LEVEL=warn "$root/target/release/premise" --listen 127.0.0.1:$api \
  --database-url "postgres://premise@127.0.0.1:$port/postgres" >"$work/premise.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$api/readyz >/dev/null && break; sleep 0.1; done
base=http://127.0.0.1:$api
curl -sf -u admin:secret -X POST $base/v1/users/login -d '{"new_password":"L0ad!Test"}' >/dev/null
token=$(curl -sf -u 'admin:L0ad!Test' -X POST $base/v1/users/login | sed 's/.*"token":"\([^"]*\)".*/\1/')
auth="Authorization: Bearer $token"
curl -sf -X PATCH -H "$auth" $base/v1/settings/application -d '{"webhooks":{"message":{"delivered":false,"read":false}}}' >/dev/null
curl -sf -X POST -H "$auth" $base/v1/account/shards -d "{\"cc\":\"1\",\"phone_number\":\"5550100\",\"shards\":$shards}" >/dev/null
sleep 3 # let the pool take the shards

cat >"$work/post.lua" <<'LUA'
local token = os.getenv("TOKEN")
local filler = string.rep("x", 180)
request = function()
  local to = string.format("1555%07d", math.random(0, 9999))
  local body = '{"to":"' .. to .. '","type":"text","text":{"body":"' .. filler .. '"}}'
  return wrk.format("POST", "/v1/messages", {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
LUA
echo "== $shards shard(s), $connections connections, ${seconds}s"
TOKEN=$token wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" $base
for _ in $(seq 600); do
  [ "$(psql -c 'SELECT count(*) FROM messages WHERE status = 0')" = 0 ] && break; sleep 0.2
done
psql -c "SELECT 'accepted ' || count(*) || ', end-to-end ' || round(count(*) / ((max(updated_at) - min(accepted_at)) / 1000.0)) || ' msg/s (first accept to last ack ' || round((max(updated_at) - min(accepted_at)) / 1000.0, 1) || ' s), peak server RSS n/a' FROM messages"
grep -E "VmHWM" /proc/$server/status || true
