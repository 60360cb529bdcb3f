-- sonde.lib.test_hooks: what modules share with the spec runner without
-- requiring it. Modules that keep per-test state add themselves when they
-- load; the runner calls each one's _test_reset() before a test,
-- _test_end(result, scope) after it and _block_end(block) once a block's
-- teardown has run. A list rather than a scan of package.loaded, since it
-- runs twice per test.
local M = { modules = {} }

function M.add(mod)
  for _, m in ipairs(M.modules) do
    if m == mod then return end
  end
  M.modules[#M.modules + 1] = mod
end

-- fail(message, level): a failed check of a module (a clock's, an events
-- assertion) is an assertion failure inside a spec, reported "fail" like
-- luassert's, not "error"; outside the runner it is a plain error.
function M.fail(message, level)
  local dsl = package.loaded["sonde.runner.dsl"]
  if dsl then dsl.fail(message, level + 1) end
  error(message, level + 1)
end

return M
