-- Runs one Lua script the translator wrote (a LuaPerRoute source code, or
-- a Lua filter's shared source with the route's program in the file
-- SLUICE_LUA_PROGRAM names, as its metadata) the way Envoy's Lua filter
-- would, against mock request and response handles
-- with the behaviour of Envoy's Lua API (headers get (values joined by
-- ","), getAtIndex, replace, add, remove),
-- body(true) with getBytes/length/setBytes, respond, streamInfo's dynamic
-- metadata shared by both): the script must load, define envoy_on_request
-- (unless it is a default no-op) and run.
-- Usage: lua5.1 translator_lua_mock.lua SCRIPT PATH [header=value ...]
--          [--body TEXT] [--response STATUS [header=value ...] [--body TEXT]]
-- Prints the request's :method, its body ("<none>" when unset), its other
-- headers ("name=value;..." sorted) and its :path afterwards, a line
-- "metadata NAMESPACE KEY=VALUE" for each dynamic metadata value it set;
-- then "respond STATUS BODY" when the script answered the request itself,
-- else with --response the response's :status, body and headers.
local script = arg[1]
local function message(pseudo, status)
  return {hdrs = {[pseudo] = status}, body = nil}
end
local req = message(":path", arg[2])
req.hdrs[":method"] = "GET"
local resp
local cur = req
local i = 3
while i <= #arg do
  if arg[i] == "--body" then
    cur.body, i = arg[i + 1], i + 2
  elseif arg[i] == "--response" then
    resp = message(":status", arg[i + 1])
    cur, i = resp, i + 2
  else
    local k, v = string.match(arg[i], "^([^=]+)=(.*)$")
    cur.hdrs[k], i = v, i + 1
  end
end
local metadata = {}
local responded
-- A header map: its entries are the table's own (so pairs() iterates the
-- headers, as Envoy's map does), its methods and the separate values of
-- headers added more than once in the metatable.
local function values(t) return getmetatable(t).values end
local header_methods = {
  get = function(t, k) return rawget(t, k) end,
  getAtIndex = function(t, k, i)
    assert(type(i) == "number", "getAtIndex takes an index")
    if values(t)[k] then return values(t)[k][i + 1] end
    if i == 0 then return rawget(t, k) end
    return nil
  end,
  replace = function(t, k, v)
    assert(type(k) == "string" and type(v) == "string", "replace takes strings")
    rawset(t, k, v)
    values(t)[k] = nil
  end,
  add = function(t, k, v)
    assert(type(k) == "string" and type(v) == "string", "add takes strings")
    if rawget(t, k) then
      values(t)[k] = values(t)[k] or {rawget(t, k)}
      table.insert(values(t)[k], v)
      rawset(t, k, rawget(t, k) .. "," .. v)
    else
      rawset(t, k, v)
    end
  end,
  remove = function(t, k)
    rawset(t, k, nil)
    values(t)[k] = nil
  end,
}
local function handle(m)
  local h = {}
  setmetatable(m.hdrs, {__index = header_methods, values = {}})
  function h:headers() return m.hdrs end
  function h:body(always_wrap)
    assert(always_wrap == true, "body() without always_wrap_body returns nil for messages without a body")
    local data = m.body or ""
    return {
      length = function() return #data end,
      getBytes = function(_, start, n)
        assert(start == 0 and n <= #data, "getBytes out of range")
        return string.sub(data, 1, n)
      end,
      setBytes = function(_, s) assert(type(s) == "string"); m.body = s; data = s end,
    }
  end
  function h:respond(hdrs, body)
    assert(m == req, "respond() is for requests")
    responded = {hdrs[":status"], body}
    error("responded", 0)
  end
  function h:logErr(msg) io.stderr:write("logErr: ", msg, "\n") end
  -- the route's metadata in the filter's namespace: {program = the file
  -- SLUICE_LUA_PROGRAM names}, a new string on each call as Envoy's
  function h:metadata()
    return {
      get = function(_, k)
        local path = os.getenv("SLUICE_LUA_PROGRAM")
        if k ~= "program" or not path then return nil end
        local f = assert(io.open(path))
        local s = f:read("*a")
        f:close()
        return s
      end,
    }
  end
  function h:streamInfo()
    return {
      dynamicMetadata = function()
        return {
          set = function(_, ns, k, v)
            assert(type(ns) == "string" and type(k) == "string", "set takes a namespace and a key")
            metadata[ns] = metadata[ns] or {}
            metadata[ns][k] = v
          end,
          get = function(_, ns) return metadata[ns] end,
        }
      end,
    }
  end
  return h
end
local function print_message(m)
  local names = {}
  for k in pairs(m.hdrs) do if string.sub(k, 1, 1) ~= ":" then names[#names + 1] = k end end
  table.sort(names)
  for n, k in ipairs(names) do names[n] = k .. "=" .. m.hdrs[k] end
  io.write(m.body or "<none>", "\n", table.concat(names, ";"), "\n")
end
local chunk = assert(loadfile(script))
chunk()
if envoy_on_request then
  local ok, err = pcall(envoy_on_request, handle(req))
  if not ok and not responded then error(err, 0) end
end
io.write(req.hdrs[":method"], "\n")
print_message(req)
io.write(req.hdrs[":path"], "\n")
-- dynamic metadata the script set (but its own, which says what matched)
local function show(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys, o = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do o[#o + 1] = tostring(k) .. ":" .. show(v[k]) end
  return "{" .. table.concat(o, ",") .. "}"
end
local entries = {}
for ns, kv in pairs(metadata) do
  if string.sub(ns, 1, 21) ~= "sluice.transformation" then
    for k, v in pairs(kv) do entries[#entries + 1] = "metadata " .. ns .. " " .. k .. "=" .. show(v) end
  end
end
table.sort(entries)
for _, e in ipairs(entries) do io.write(e, "\n") end
if responded then
  io.write("respond ", responded[1], " ", responded[2], "\n")
elseif resp then
  if envoy_on_response then envoy_on_response(handle(resp)) end
  io.write(resp.hdrs[":status"], "\n")
  print_message(resp)
end
