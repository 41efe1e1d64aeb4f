-- wrk script for cofi serve: GET /recommend for real user IDs, in turn.
--
-- The IDs come from the file named by $COFI_BENCH_USERS (one per line;
-- run.sh writes the users of the ml-latest-small model). Each wrk thread
-- starts at a different place in the list, so the threads do not ask for
-- the same user at the same moment. k is $COFI_BENCH_K (default 10).
-- Requests are prepared once at start, so the Lua work per request is an
-- index increment: the benchmark measures the server, not the script.

local path = os.getenv("COFI_BENCH_USERS") or "users.txt"
local k = os.getenv("COFI_BENCH_K") or "10"

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local requests = {}
for line in io.lines(path) do
  if line ~= "" then
    requests[#requests + 1] = wrk.format("GET", "/recommend?user_id=" .. encode(line) .. "&k=" .. k)
  end
end
if #requests == 0 then error("no user IDs in " .. path) end

local next_thread = 0
function setup(thread)
  thread:set("start", next_thread)
  next_thread = next_thread + 1
end

local i = nil
function request()
  if i == nil then i = ((start or 0) * 7919) % #requests end
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
