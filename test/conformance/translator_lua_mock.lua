-- Runs one Lua script the translator wrote (a LuaPerRoute source code) the
-- way Envoy's Lua filter would, against a mock request handle: the script
-- must load, define envoy_on_request (unless it is a default no-op) and run.
-- Usage: lua5.1 translator_lua_mock.lua SCRIPT PATH [header=value ...]
-- Prints the request's :method, its body ("<none>" when unset) and its
-- other headers ("name=value;..." sorted) afterwards.
local script, path = arg[1], arg[2]
local hdrs = {[":path"] = path, [":method"] = "GET"}
for i = 3, #arg do
  local k, v = string.match(arg[i], "^([^=]+)=(.*)$")
  hdrs[k] = v
end
local body
local handle = {}
function handle:headers()
  return {
    get = function(_, k) return hdrs[k] end,
    replace = function(_, k, v)
      assert(type(k) == "string" and type(v) == "string", "replace takes strings")
      hdrs[k] = v
    end,
  }
end
function handle:body(always_wrap)
  assert(always_wrap == true, "body() without always_wrap_body returns nil for requests without a body")
  return {setBytes = function(_, s) assert(type(s) == "string"); body = s end}
end
local chunk = assert(loadfile(script))
chunk()
if envoy_on_request then envoy_on_request(handle) end
local names = {}
for k in pairs(hdrs) do if string.sub(k, 1, 1) ~= ":" then names[#names + 1] = k end end
table.sort(names)
for i, k in ipairs(names) do names[i] = k .. "=" .. hdrs[k] end
io.write(hdrs[":method"], "\n", body or "<none>", "\n", table.concat(names, ";"), "\n")
