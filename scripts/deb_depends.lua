-- scripts/deb_depends.lua: the Debian relations of the libraries sonde opens
-- with dlopen, which dpkg-shlibdeps cannot see (they are not NEEDED).
--
--   sonde run scripts/deb_depends.lua ELF...
--
-- reads the .note.dlopen notes of each ELF file (systemd's format, made by
-- SONDE_DL_NOTE in host/dl.h), and for each soname of each feature that this
-- machine has, links a probe against that very file using the names sonde
-- binds from it (the X-macro lists of host/curl_dl.h and host/edit_dl.h), and
-- asks dpkg-shlibdeps which package, from which version, provides them. The
-- sonames of a feature are alternatives; its priority says the relation:
-- required -> Depends, recommended -> Recommends, suggested -> Suggests.
-- Prints one line per relation, "Depends=libcurl4 (>= 7.16.3) | libcurl3-gnutls
-- (>= 7.16.3), libedit2 (>= 3.1-20130611)", and exits 1 with one line when
-- something cannot be worked out.
local process = require("sonde.process")
local json = require("sonde.json")

-- each feature's list of bound names, in host/'s headers
local PROBES = { http = "SONDE_CURL_NAMES", ["repl-editing"] = "SONDE_EDIT_NAMES" }
local RELATION = { required = "Depends", recommended = "Recommends", suggested = "Suggests" }
local NOTE_TYPE = 0x407c0c0a

local cleanup
local function fail(msg)
  if cleanup then cleanup() end
  io.stderr:write("deb_depends: " .. msg .. "\n")
  os.exit(1)
end

local function run(argv)
  argv.timeout = 120
  local code, out, err = process.run(argv)
  if code ~= 0 then fail(table.concat(argv, " ") .. " failed: " .. (err ~= "" and err or out):gsub("\n$", "")) end
  return out
end

local tmp = os.tmpname()
os.remove(tmp)
function cleanup() process.run { "rm", "-rf", tmp } end
run { "mkdir", "-p", tmp .. "/debian" }
assert(io.open(tmp .. "/debian/control", "w")):close() -- dpkg-shlibdeps reads it

local function u32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return a + b * 256 + c * 65536 + d * 16777216
end
local function align4(n) return n + (4 - n % 4) % 4 end

-- notes(elf) -> the features its .note.dlopen notes declare
local function notes(elf, into)
  local bin = tmp .. "/note.bin"
  run { "objcopy", "-O", "binary", "--only-section=.note.dlopen", elf, bin }
  local f = assert(io.open(bin, "rb"))
  local s = f:read("*a")
  f:close()
  local i = 1
  while i + 12 <= #s do
    local namesz, descsz, ntype = u32(s, i), u32(s, i + 4), u32(s, i + 8)
    local name = s:sub(i + 12, i + 12 + namesz - 2)
    local desc_at = i + 12 + align4(namesz)
    if name == "FDO" and ntype == NOTE_TYPE then
      local text = s:sub(desc_at, desc_at + descsz - 1):gsub("%z+$", "")
      local ok, list = pcall(json.decode, text)
      if not ok or type(list) ~= "table" then fail(elf .. ": a .note.dlopen that is no JSON array: " .. text) end
      for _, feature in ipairs(list) do into[feature.feature] = feature end
    end
    i = desc_at + align4(descsz)
  end
end

-- ldconfig's map of soname -> file
local function libraries()
  local map = {}
  for soname, path in run { "/sbin/ldconfig", "-p" }:gmatch("\n%s*(%S+) %([^)]*%) => (%S+)") do
    map[soname] = map[soname] or path
  end
  return map
end

-- relation(feature, path) -> "libcurl4 (>= 7.16.3)": the package of the
-- library at path, from the version that has every name sonde binds
local function relation(feature, path)
  local list = PROBES[feature.feature]
  if not list then fail("no probe for the dlopen feature '" .. feature.feature .. "': add it to PROBES") end
  local src, so = tmp .. "/probe.c", tmp .. "/probe.so"
  local f = assert(io.open(src, "w"))
  f:write("#include <curl/curl.h>\n#include <editline/readline.h>\n#define SONDE_CURL_DL_TABLE\n",
    "#define SONDE_EDIT_DL_TABLE\n#include \"curl_dl.h\"\n#include \"edit_dl.h\"\n",
    "#define ADDRESS(name) (const void *)&name,\n",
    "const void *const sonde_probe[] = {", list, "(ADDRESS) 0};\n")
  f:close()
  run { "cc", "-shared", "-fPIC", "-Ihost", "-o", so, src, path }
  local out = run { "dpkg-shlibdeps", "-O", "probe.so", cwd = tmp }
  for dep in (out:match("shlibs:Depends=([^\n]*)") or ""):gmatch("[^,]+") do
    dep = dep:gsub("^%s+", "")
    if not dep:match("^libc6[ %(]") and not dep:match("^libc6$") then return dep end
  end
  fail("dpkg-shlibdeps names no package for " .. path)
end

local features = {}
for i = 1, #arg do notes(arg[i], features) end
local names = {}
for name in pairs(features) do names[#names + 1] = name end
table.sort(names)
local have, relations = libraries(), { Depends = {}, Recommends = {}, Suggests = {} }
for _, name in ipairs(names) do
  local feature, alternatives = features[name], {}
  for _, soname in ipairs(feature.soname or {}) do
    if have[soname] then alternatives[#alternatives + 1] = relation(feature, have[soname]) end
  end
  if #alternatives == 0 then
    fail("none of the sonames of '" .. name .. "' is installed here: " .. table.concat(feature.soname or {}, ", "))
  end
  local kind = RELATION[feature.priority]
  if not kind then fail("feature '" .. name .. "' has an unknown priority: " .. tostring(feature.priority)) end
  table.insert(relations[kind], table.concat(alternatives, " | "))
end
cleanup()
for _, kind in ipairs { "Depends", "Recommends", "Suggests" } do
  print(kind .. "=" .. table.concat(relations[kind], ", "))
end
