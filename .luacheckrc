-- luacheck's configuration: `luacheck lua specs examples bench` (.ci/run)
-- must be clean.
--
-- sonde's Lua runs in LuaJIT. Spec files (and the examples' and bench's,
-- which sonde runs too) also see the spec DSL's globals, which
-- sonde.luacheck_std lists, for this project and for users' own
-- .luacheckrc (README, "Lint").
std = "luajit"
stds.sonde = dofile("lua/sonde/luacheck_std.lua")
files["specs"] = { std = "+sonde" }
files["examples"] = { std = "+sonde" }
files["bench"] = { std = "+sonde" }

-- The width of the C code (.clang-format).
max_line_length = 120
-- but for the page the HTML reporter writes, a document of its own (HTML,
-- CSS and JS in long strings) whose lines are not Lua's
files["lua/sonde/runner/reporters/html.lua"] = { max_string_line_length = false }

-- A method keeps `self` though its body has no use for it (the callers'
-- obj:method() stays uniform, and a livecheck case:run must take it).
self = false

-- Fixtures about globals set them on purpose: what busted's insulate and
-- expose do with them is what they check.
files["specs/compat/d_insulate_compat.lua"] = { globals = { "file_level_value", "shared_by_hook", "test_local_value" } }
files["specs/compat/e_after_insulate_compat.lua"] = { read_globals = { "file_level_value" } }
files["specs/compat/f_expose_compat.lua"] = { globals = { "exposed_value" } }
files["specs/compat/g_after_expose_compat.lua"] = { read_globals = { "exposed_value" } }
files["specs/fixtures/runner/describe_order.lua"] = { globals = { "order_log" } }
files["specs/fixtures/repl/load_me.lua"] = { globals = { "loaded_probe" } }
-- A load script (sonde load) defines its k6-style globals at its top for
-- sonde load to read, not itself: options, setup, teardown, default and
-- the functions its scenarios exec.
files["specs/fixtures/load"] = { std = "luajit", allow_defined_top = true, ignore = { "131" } }
-- a file that must not parse (the syntax error is what it is for)
exclude_files = { "specs/fixtures/syntax_error.lua" }
