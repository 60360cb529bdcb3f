-- sonde.luacheck_std: the globals a sonde spec file sees (busted's DSL and
-- luassert, plus fail), as a luacheck std. In a project's .luacheckrc:
--
--   stds.sonde = require("sonde.luacheck_std") -- or dofile(".../sonde/luacheck_std.lua")
--   files["spec"] = { std = "+sonde" }
--
-- specs/lint_spec.lua checks it against the spec DSL's globals.
return {
  read_globals = {
    "describe", "context", "insulate", "expose", "it", "test", "spec", "pending", "finally",
    "before_each", "after_each", "setup", "teardown", "lazy_setup", "lazy_teardown", "strict_setup",
    "strict_teardown", "randomize", "assert", "spy", "stub", "mock", "match", "fail",
  },
}
