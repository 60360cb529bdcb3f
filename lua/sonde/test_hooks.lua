-- sonde.test_hooks: the modules that keep per-test state. A module adds
-- itself when it loads; the spec runner calls each one's _test_reset()
-- before a test and _test_end(result, scope) after it. A list rather than
-- a scan of package.loaded, since it runs twice per test.
local M = { modules = {} }

function M.add(mod)
  for _, m in ipairs(M.modules) do
    if m == mod then return end
  end
  M.modules[#M.modules + 1] = mod
end

return M
