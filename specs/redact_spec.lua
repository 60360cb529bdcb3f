-- sonde.lib.redact: the one function every printer of requests, responses and
-- results calls. The reports themselves are checked against httpbin in
-- http_spec.lua and repl_spec.lua; here, what the rules do and leave alone.
local redact = require("sonde.lib.redact")
local http = require("sonde.http")

describe("sonde.lib.redact", function()
  it("redacts values by the name of their header line, query pair, JSON member or URL user info", function()
    local text = table.concat({
      "GET http://bob:pa55word-1@h/x?page=2&access_token=tok-value-1&Api_Key=key-value-1",
      "> Proxy-Authorization: Basic Ym9iOmh1bnRlcjIy",
      "< set-cookie: sid=sid-value-1; Path=/",
      '{"password": "pw \\" value", "user": "bob", "X-Session-Id": "sess-value-1"}',
    }, "\n")
    assert.are.equal(table.concat({
      "GET http://bob:[redacted]@h/x?page=2&access_token=[redacted]&Api_Key=[redacted]",
      "> Proxy-Authorization: [redacted]",
      "< set-cookie: [redacted]",
      '{"password": "[redacted]", "user": "bob", "X-Session-Id": "[redacted]"}',
    }, "\n"), redact.text(text))
  end)

  it("redacts the values of a request's secrets wherever they reappear, and the parts of them sent alone", function()
    redact.note_request("http://alice:opensesame@h/?token=a%2Bb%2Fc123", { "Authorization: Bearer bearer-value-1",
      "Cookie: theme=dark; sid=cookie-value-1", "X-Trace: not-a-secret" })
    local echoed = "bearer-value-1 cookie-value-1 a+b/c123 opensesame YWxpY2U6b3BlbnNlc2FtZQ== not-a-secret dark"
    assert.are.equal("[redacted] [redacted] [redacted] [redacted] [redacted] not-a-secret dark", redact.text(echoed))
  end)

  it("finds the password inside Basic credentials", function()
    redact.note_request("http://h/", { "Authorization: Basic " .. "Y2Fyb2w6Y2Fyb2wtcGFzc3dvcmQ=" })
    assert.are.equal("user [redacted] and [redacted]", redact.text("user carol:carol-password and carol-password"))
  end)

  it("leaves alone what only looks like a secret's name, and values too short to search for", function()
    redact.note_request("http://h/?session=abc12", {})
    local text = "specs/session_spec.lua:12: expected token\nsession_spec.lua:3: in function\nDate: today\nabc12 here"
    assert.are.equal(text, redact.text(text))
  end)

  it("changes nothing the second time", function()
    local once = redact.text('token=t0ken-value&x=1\nCookie: a=b\n{"secret": "s3cret-value"} t0ken-value')
    assert.are.equal(once, redact.text(once))
    assert.are.equal('token=[redacted]&x=1\nCookie: [redacted]\n{"secret": "[redacted]"} [redacted]', once)
  end)

  it("takes more names from http.redact, and says at the caller's line what it expects", function()
    http.redact { "X_Tenant" }
    assert.are.equal("X-Tenant-Id: [redacted]", redact.text("X-Tenant-Id: tenant-value-1"))
    local ok, err = pcall(function() http.redact("x-mine") end)
    assert.is_false(ok)
    assert.matches("redact_spec.lua:%d+: http%.redact: expected a list of names such as {\"x%-my%-header\"}, got a " ..
        "string$", err)
    ok, err = pcall(function() http.redact { "x", 3 } end)
    assert.is_false(ok)
    assert.matches("redact_spec.lua:%d+: http%.redact: name 2 must be a non%-empty string, got a number$", err)
  end)
end)
