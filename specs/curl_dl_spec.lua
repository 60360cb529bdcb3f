-- host/curl_dl.h: libcurl's variadic setters are called through one
-- prototype per option type, picked from the option at compile time, so a
-- value of the wrong type does not compile (curl would read it as garbage).
local support = require("specs.support")
local process = require("sonde.process")

-- compile(expr) -> code, compiler output of a C file returning expr, built
-- as sonde's own sources are (-Wall -Wextra -Werror)
local function compile(dir, expr)
  support.write_file(dir .. "/t.c", '#include <curl/curl.h>\n#include "curl_dl.h"\n'
    .. "int f(CURL *e, CURLM *m, char *buf) { (void)e; (void)m; (void)buf; return (int)" .. expr .. "; }\n")
  local code, out, err = process.run { "cc", "-c", "-Wall", "-Wextra", "-Werror", "-Ihost", "-o", dir .. "/t.o",
    dir .. "/t.c", timeout = 60 }
  return code, out .. err
end

describe("curl_dl.h's typed setters", function()
  it("compile each option with a value of its type", function()
    local dir = support.temp_dir("curl")
    for _, expr in ipairs { "sonde_easy_setopt(e, CURLOPT_NOSIGNAL, 1)", "sonde_easy_setopt(e, CURLOPT_URL, buf)",
      "sonde_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)3)",
      "sonde_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &buf)",
      "sonde_multi_setopt(m, CURLMOPT_MAXCONNECTS, 4L)" } do
      local code, out = compile(dir, expr)
      assert.are.equal(0, code, expr .. ": " .. out)
    end
  end)

  it("refuse a value of another type, and an option of a type they have no setter for", function()
    local dir = support.temp_dir("curl")
    local cases = {
      { 'sonde_easy_setopt(e, CURLOPT_NOSIGNAL, "1")', "sonde_easy_setopt_long" }, -- a pointer for a long
      { "sonde_easy_setopt(e, CURLOPT_URL, 1L)", "sonde_easy_setopt_ptr" },       -- a long for a pointer
      { 'sonde_easy_setopt(e, CURLOPT_WRITEFUNCTION, "f")', "sonde_easy_setopt_write_cb" },
      { "sonde_easy_getinfo(e, CURLINFO_RESPONSE_CODE, (int *)0)", "sonde_easy_getinfo_long" }, -- curl writes a long
      { 'sonde_multi_setopt(m, CURLMOPT_MAXCONNECTS, "4")', "sonde_multi_setopt_long" },
      { "sonde_easy_setopt(e, CURLOPT_READFUNCTION, 0)", "sonde_curl_no_setter_for_this_type" },
    }
    for _, case in ipairs(cases) do
      local code, out = compile(dir, case[1])
      assert.are_not.equal(0, code, case[1] .. " compiled")
      assert.matches(case[2], out, 1, true)
    end
  end)
end)

describe("the .note.dlopen notes", function()
  -- systemd's format: owner FDO, type 0x407c0c0a, a JSON array
  it("name the libraries sonde opens with dlopen, with the sonames it tries", function()
    local dir = support.temp_dir("note")
    local code, _, err = process.run { "objcopy", "-O", "binary", "--only-section=.note.dlopen", support.bin,
      dir .. "/note", timeout = 60 }
    assert.are.equal(0, code, err)
    local note = io.open(dir .. "/note", "rb"):read("*a")
    local found, i = {}, 1
    local function u32(at) local a, b, c, d = note:byte(at, at + 3) return a + 256 * b + 65536 * c + 16777216 * d end
    while i + 12 <= #note do
      local namesz, descsz, ntype = u32(i), u32(i + 4), u32(i + 8)
      assert.are.equal(4, namesz)
      assert.are.equal(0x407c0c0a, ntype)
      assert.are.equal("FDO\0", note:sub(i + 12, i + 15))
      local desc = note:sub(i + 16, i + 16 + descsz - 1)
      assert.are.equal("\0", desc:sub(-1)) -- a C string
      for _, feature in ipairs(require("sonde.json").decode(desc:sub(1, -2))) do
        found[feature.feature] = feature
      end
      i = i + 16 + descsz + (4 - descsz % 4) % 4
    end
    assert.are.same({ "libcurl.so.4", "libcurl-gnutls.so.4" }, found.http.soname)
    assert.are.same({ "libedit.so.2", "libedit.so.0" }, found["repl-editing"].soname)
    assert.are.equal("required", found.http.priority)
    assert.is_string(found.http.description)
  end)
end)
