-- sonde.lib.file: reading a whole file, the one way sonde's Lua does it
-- (a spec's report, a load script, a file under .git).
local M = {}

-- read(path) -> the file's bytes | nil, io.open's message.
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return text
end

return M
