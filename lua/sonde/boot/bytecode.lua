-- sonde.boot.bytecode: string.dump, keeping what table constructors reserve.
--
-- A constructor such as { name = x, line = 1 } compiles to a template
-- table that holds every key, the ones whose values come later with nil
-- values: copying the template then gives the new table room for all its
-- fields at once. LuaJIT's string.dump before 2024 (Debian's 2.1.0-beta3
-- among them; LuaJIT issue #1155) writes only the keys that have values,
-- so code loaded from bytecode grows such a table key by key, rehashing it
-- each time: a constructor with six dynamic fields cost 218 ns instead of
-- 72. The sonde binary's own modules and the chunk cache are bytecode.
--
-- dump(fn) writes string.dump's bytecode with those keys put back: for each
-- TDUP, the string keys that the TSETS after it store into the same
-- register, until an instruction names that register as the one it writes
-- (writes to ranges of registers, a call's results say, are not followed).
-- LuaJIT's reader loads them as the parser made them (keys with nil
-- values), so the bytecode is what a fixed LuaJIT would write. A key taken
-- from a store into another table only makes the template's tables reserve
-- a slot more: a string key with a nil value is absent to Lua. Array slots
-- are left as they are, as LuaJIT's own fix leaves them: reserving them
-- would change what # says of a table with holes.
-- Pure Lua, so the build can use it under luajit to embed sonde's modules.
local bit = require("bit")
local jutil = require("jit.util")

local band = bit.band

local M = {}

-- LuaJIT 2.1's opcodes in their order (lj_bc.h). A probe function's
-- bytecode must agree with them, else dump is string.dump unchanged.
local OPCODES = [[ISLT ISGE ISLE ISGT ISEQV ISNEV ISEQS ISNES ISEQN ISNEN ISEQP ISNEP ISTC ISFC IST ISF
  ISTYPE ISNUM MOV NOT UNM LEN ADDVN SUBVN MULVN DIVVN MODVN ADDNV SUBNV MULNV DIVNV MODNV ADDVV SUBVV
  MULVV DIVVV MODVV POW CAT KSTR KCDATA KSHORT KNUM KPRI KNIL UGET USETV USETS USETN USETP UCLO FNEW
  TNEW TDUP GGET GSET TGETV TGETS TGETB TGETR TSETV TSETS TSETB TSETM TSETR CALLM CALL CALLMT CALLT
  ITERC ITERN VARG ISNEXT RETM RET RET0 RET1 FORI JFORI FORL IFORL JFORL ITERL IITERL JITERL LOOP
  ILOOP JLOOP JMP]]
local OP = {}
do
  local n = 0
  for name in OPCODES:gmatch("%S+") do OP[name], n = n, n + 1 end
end
local TDUP, TSETS = OP.TDUP, OP.TSETS

local function probe(x)
  local t = { a = 1, b = x, x }
  return t
end
local function probe_op(pc) return band((jutil.funcbc(probe, pc)), 0xff) end
local understood = probe_op(1) == TDUP and probe_op(2) == TSETS and probe_op(3) == OP.TSETB and probe_op(4) == OP.RET1

-- Opcodes whose A operand is no register they write: stores, tests,
-- returns, jumps. Any other naming the template's register ends its scan.
local KEEPS_A = {}
for name in ([[ISLT ISGE ISLE ISGT ISEQV ISNEV ISEQS ISNES ISEQN ISNEN ISEQP ISNEP IST ISF ISTYPE ISNUM
  USETV USETS USETN USETP UCLO GSET TSETV TSETS TSETB TSETM TSETR CALLMT CALLT RETM RET RET0 RET1 JMP
  LOOP ILOOP JLOOP]]):gmatch("%S+") do
  KEEPS_A[OP[name]] = true
end

-- ------------------------------------------------------------ reading

local BCDUMP_F_BE, BCDUMP_F_STRIP = 1, 2
local KGC_TAB, KGC_I64, KGC_U64, KGC_COMPLEX, KGC_STR = 1, 2, 3, 4, 5 -- and 0: a child
local KTAB_NIL, KTAB_INT, KTAB_NUM, KTAB_STR = 0, 3, 4, 5

local Reader = {}
Reader.__index = Reader

local function reader(s, pos) return setmetatable({ s = s, pos = pos or 1 }, Reader) end

function Reader:byte()
  local b = self.s:byte(self.pos)
  if not b then error("truncated bytecode", 0) end
  self.pos = self.pos + 1
  return b
end

function Reader:uleb()
  local v, shift = 0, 0
  repeat
    local b = self:byte()
    v = v + band(b, 0x7f) * 2 ^ shift
    shift = shift + 7
  until b < 0x80
  return v
end

function Reader:bytes(n)
  local s = self.s:sub(self.pos, self.pos + n - 1)
  if #s < n then error("truncated bytecode", 0) end
  self.pos = self.pos + n
  return s
end

local function uleb(v)
  local out = {}
  repeat
    local b = v % 128
    v = (v - b) / 128
    out[#out + 1] = string.char(v > 0 and b + 128 or b)
  until v == 0
  return table.concat(out)
end

-- A template entry as its bytes, and what it holds (for keys: the string,
-- or the integer).
local function read_ktabk(r)
  local start = r.pos
  local t = r:uleb()
  local value
  if t >= KTAB_STR then
    value = r:bytes(t - KTAB_STR)
  elseif t == KTAB_INT then
    value = r:uleb()
  elseif t == KTAB_NUM then
    r:uleb(); r:uleb()
  end
  return r.s:sub(start, r.pos - 1), value, t
end

local function read_ktab(r)
  local narray, nhash = r:uleb(), r:uleb()
  local array, hash, keys = {}, {}, {}
  for i = 1, narray do array[i] = (read_ktabk(r)) end
  for i = 1, nhash do
    local kbytes, k, kt = read_ktabk(r)
    local vbytes = read_ktabk(r)
    hash[i] = kbytes .. vbytes
    if kt >= KTAB_STR then keys[k] = true end
  end
  return { array = array, hash = hash, keys = keys }
end

local function write_ktab(t)
  return uleb(#t.array) .. uleb(#t.hash) .. table.concat(t.array) .. table.concat(t.hash)
end

-- ----------------------------------------------------------- the scan

-- The instruction at pc (from 0) of the code starting at s[base].
local function instruction(s, base, pc)
  local o = base + pc * 4
  local op, a, c, b = s:byte(o, o + 3)
  return op, a, b, c
end

-- For each TDUP in the numbc instructions at s[base] that string keys are
-- stored into: {kgc = its constant index, keys = {string constant
-- index...}}; nil when there is none (most functions: this look is all a
-- dump pays for them).
local function constructors(s, base, numbc)
  local found
  for pc = 0, numbc - 1 do
    local op, a = s:byte(base + pc * 4, base + pc * 4 + 1)
    if op == TDUP then
      local entry
      for next_pc = pc + 1, math.min(numbc - 1, pc + 512) do
        local nop, na, nb, nc = instruction(s, base, next_pc)
        if nop == TSETS and nb == a then
          if not entry then
            local o = base + pc * 4
            entry = { kgc = s:byte(o + 2) + s:byte(o + 3) * 256, keys = {} }
            found = found or {}
            found[#found + 1] = entry
          end
          entry.keys[#entry.keys + 1] = nc
        elseif na == a and not KEEPS_A[nop] then
          break
        end
      end
    end
  end
  return found
end

-- ----------------------------------------------------------- rewriting

-- Steps over one kgc entry; returns its type (KGC_STR and above: a string
-- of type - KGC_STR bytes).
local function skip_kgc(r)
  local t = r:uleb()
  if t >= KGC_STR then
    r.pos = r.pos + t - KGC_STR
  elseif t == KGC_TAB then
    read_ktab(r)
  else
    local words = (t == KGC_I64 or t == KGC_U64) and 2 or t == KGC_COMPLEX and 4 or 0
    for _ = 1, words do r:uleb() end
  end
  return t
end

-- Puts back into `tab` the string keys a constructor stores; key(c) is the
-- string constant c, or nil.
local function reserve(tab, entry, key)
  for _, c in ipairs(entry.keys) do
    local k = key(c)
    if k and not tab.keys[k] then
      tab.keys[k] = true
      tab.hash[#tab.hash + 1] = uleb(KTAB_STR + #k) .. k .. uleb(KTAB_NIL)
    end
  end
end

-- A prototype's header: its flags, parameter count, frame size and
-- upvalue count bytes, then the counts of its constants and instructions
-- (and where it has line information, that information's size and span).
local function read_proto_head(r, strip)
  r:byte(); r:byte(); r:byte()
  local numuv = r:byte()
  local numkgc, _, numbc = r:uleb(), r:uleb(), r:uleb()
  if not strip and r:uleb() > 0 then r:uleb(); r:uleb() end
  return numuv, numkgc, numbc
end

-- The dump's header: the signature, version 2 (LuaJIT 2.1), flags, and
-- without BCDUMP_F_STRIP the chunk name. Returns whether it is stripped, or
-- nil for a dump this does not know (another version, big-endian).
local function read_dump_head(r)
  if r:bytes(3) ~= "\27LJ" or r:byte() ~= 2 then return nil end
  local flags = r:uleb()
  if band(flags, BCDUMP_F_BE) ~= 0 then return nil end
  local strip = band(flags, BCDUMP_F_STRIP) ~= 0
  if not strip then r:bytes(r:uleb()) end
  return strip
end

-- The prototype in pdata with its templates' keys put back, given what
-- its constructors store (found). Only the templates are rewritten; the
-- rest is copied.
local function fix_proto(pdata, strip, found)
  local r = reader(pdata)
  local numuv, numkgc, numbc = read_proto_head(r, strip)
  r.pos = r.pos + numbc * 4 + numuv * 2
  local at, kind = {}, {}
  for i = 1, numkgc do
    at[i] = r.pos
    kind[i] = skip_kgc(r)
  end
  at[numkgc + 1] = r.pos
  local function key(c) -- constant c of a TSETS, a string
    local i = numkgc - c
    if not kind[i] or kind[i] < KGC_STR then return nil end
    local k = reader(pdata, at[i])
    return k:bytes(k:uleb() - KGC_STR)
  end
  local tabs = {}
  for _, entry in ipairs(found) do
    local i = numkgc - entry.kgc
    if kind[i] == KGC_TAB then
      if not tabs[i] then
        local t = reader(pdata, at[i])
        t:uleb()
        tabs[i] = read_ktab(t)
      end
      reserve(tabs[i], entry, key)
    end
  end
  local out, copied = {}, 1
  for i = 1, numkgc do
    if tabs[i] then
      out[#out + 1] = pdata:sub(copied, at[i] - 1)
      out[#out + 1] = uleb(KGC_TAB) .. write_ktab(tabs[i])
      copied = at[i + 1]
    end
  end
  out[#out + 1] = pdata:sub(copied)
  return table.concat(out)
end

-- Only the prototypes whose constructors store something are rebuilt; the
-- rest of the dump is copied as it is (or returned, when nothing changes).
local function fix(dump)
  local r = reader(dump)
  local strip = read_dump_head(r)
  if strip == nil then return dump end
  local out, copied = nil, 1 -- dump[1, copied) is in out
  while true do
    local len_at = r.pos
    local len = r:uleb()
    if len == 0 then break end
    local start = r.pos
    r.pos = start + len
    local head = reader(dump, start)
    local _, _, numbc = read_proto_head(head, strip)
    local found = constructors(dump, head.pos, numbc)
    if found then
      local pdata = fix_proto(dump:sub(start, start + len - 1), strip, found)
      out = out or {}
      out[#out + 1] = dump:sub(copied, len_at - 1)
      out[#out + 1] = uleb(#pdata) .. pdata
      copied = start + len
    end
  end
  if not out then return dump end
  out[#out + 1] = dump:sub(copied)
  return table.concat(out)
end

-- dump(fn) -> bytecode: string.dump(fn) with the constructors' keys.
function M.dump(fn)
  local dump = string.dump(fn)
  if not understood then return dump end
  local ok, fixed = pcall(fix, dump)
  return ok and fixed or dump
end

-- templates(bytecode) -> for each template in the dump, in order: the sorted
-- string keys and the array length it reserves (for specs and the curious).
function M.templates(dump)
  local found = {}
  local r = reader(dump)
  local strip = read_dump_head(r)
  assert(strip ~= nil, "not a LuaJIT 2.1 little-endian dump")
  while true do
    local len = r:uleb()
    if len == 0 then break end
    local p = reader(r:bytes(len))
    local numuv, numkgc, numbc = read_proto_head(p, strip)
    p:bytes(numbc * 4 + numuv * 2)
    for _ = 1, numkgc do
      local at = p.pos
      if skip_kgc(p) == KGC_TAB then
        local t = reader(p.s, at)
        t:uleb()
        local tab, keys = read_ktab(t), {}
        for key in pairs(tab.keys) do keys[#keys + 1] = key end
        table.sort(keys)
        found[#found + 1] = { keys = keys, narray = #tab.array }
      end
    end
  end
  return found
end

return M
