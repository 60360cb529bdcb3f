-- luajit scripts/embed.lua MODULE SOURCE OUT.h: compiles a Lua module to a
-- C header holding its bytecode, with line information, as
-- `luajit -b -g -n MODULE -t h` does, but written by sonde.boot.bytecode so that
-- its table constructors keep their reserved keys (LuaJIT issue #1155).
-- Run from the source tree's root (CMakeLists.txt does).
package.path = "lua/?.lua;" .. package.path
local module, source, out = arg[1], arg[2], arg[3]
local chunk = assert(loadfile(source))
local bytecode = require("sonde.boot.bytecode").dump(chunk)
local symbol = "luaJIT_BC_" .. module:gsub("%.", "_")
local lines, line = {}, {}
for i = 1, #bytecode do
  line[#line + 1] = bytecode:byte(i)
  if #line == 20 then
    lines[#lines + 1] = table.concat(line, ",") .. ","
    line = {}
  end
end
if #line > 0 then lines[#lines + 1] = table.concat(line, ",") end
local f = assert(io.open(out, "w"))
f:write(string.format("#define %s_SIZE %d\nstatic const unsigned char %s[] = {\n%s\n};\n", symbol, #bytecode, symbol,
  table.concat(lines, "\n")))
assert(f:close())
