-- Real servers for the specs, started once per run on loopback through
-- sonde.fixture and stopped when the run ends: httpbin under gunicorn,
-- nginx with a config written here, and json-server from deps/node.
local fixture = require("sonde.fixture")
local loop = require("sonde.c.loop")
local support = require("specs.support")

local M = {}

-- A session's directory outlives the test that made it: it goes with the
-- server, when the run ends.
local function with_dir(srv, dir)
  return srv, function(s)
    s:stop()
    support.remove_dir(dir)
  end
end

function M.httpbin()
  return fixture.session("httpbin", function()
    return fixture.server { name = "httpbin", health = "/get",
      cmd = { "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "4", "--worker-class", "sync",
        "--log-level", "warning", "httpbin:app" } }
  end)
end

-- nginx serving /health, /small.json and files under /static/.
M.NGINX_CONF = [[
daemon off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 20000; }
worker_rlimit_nofile 40000;
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%d;
    location = /health { return 200 "ok\n"; }
    location = /small.json { default_type application/json; return 200 '{"ok":true,"items":[1,2,3]}'; }
    location = /redirect { return 302 /small.json; }
    location /static/ { alias %s/static/; }
  }
}
]]

function M.nginx()
  return fixture.session("nginx", function()
    local dir = support.make_temp_dir("nginx")
    local port = fixture.unused_port()
    assert(loop.mkdir(dir .. "/static"))
    support.write_file(dir .. "/static/hello.txt", "hello from nginx\n")
    support.write_file(dir .. "/nginx.conf", M.NGINX_CONF:format(dir, dir, dir, dir, dir, dir, dir, port, dir))
    local srv = fixture.server { name = "nginx", port = port,
      cmd = { "nginx", "-p", dir, "-c", dir .. "/nginx.conf" } }
    return with_dir(srv, dir)
  end)
end

-- json-server over a fresh copy of db, one per name.
function M.json_server(name, db)
  return fixture.session("json-server " .. name, function()
    local dir = support.make_temp_dir("json-server")
    support.write_file(dir .. "/db.json", db)
    local srv = fixture.server { name = "json-server", health = "/db",
      cmd = { "deps/node/node_modules/.bin/json-server", "--port", "{port}", "--host", "127.0.0.1",
        "--quiet", dir .. "/db.json" } }
    return with_dir(srv, dir)
  end)
end

return M
