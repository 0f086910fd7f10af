--- The Files API (mixed into the Client class): resumable uploads streamed
-- from disk in 8 MiB chunks (each chunk read by the C core while it is sent,
-- so any file size takes constant memory), resumed after a failed chunk from
-- the offset the server reports; file metadata, listing, deletion. File
-- tables go anywhere an image goes (sent as fileData; see nanobanana.wire).
local core = require "nanobanana.core"
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"
local options = require "nanobanana.options"
local service = require "nanobanana.service"

local M = {}

M.CHUNK = 8 * 1024 * 1024

local File = { __name = "nanobanana.File" }
File.__index = File
M.File = File

function File:__tostring()
  return string.format("nanobanana.File (%s, %s, %s bytes)", tostring(self.name), tostring(self.mimeType),
    tostring(self.sizeBytes))
end

--- A file table from the wire's File resource (sizeBytes as a number).
function M.from_wire(t)
  local f = {}
  for k, v in pairs(t) do f[k] = v end
  if type(f.sizeBytes) == "string" then f.sizeBytes = tonumber(f.sizeBytes) end
  return setmetatable(f, File)
end

--- True when x is a File (what client:upload and client:file return).
function M.is_file(x) return getmetatable(x) == File end

local UPLOAD_OPTS = {
  mimeType = "string", displayName = "string", on_progress = "function", on_done = "function",
  timeout = "number", retries = "number", connect_timeout = "number", stall_timeout = "number",
  chunk_size = "number",
}

local function no_vertex(c, what, level)
  if c._vertex then options.fail(level + 1, "%s: the Files API is not available on Vertex AI", what) end
end

-- "files/abc" | "abc" -> "abc" (checked)
local function file_id(name, level)
  if M.is_file(name) then name = name.name end
  local id = service.resource_id(name, "files/", "file name", level + 1) -- (error levels)
  return id
end

--- The upload URL the server gave, on this client's base URL: scheme, host
-- and port are the base URL's (a gateway's), and so is its path prefix
-- when the server's URL lacks it.
local function upload_url(c, given)
  local base = c.options.base_url
  local origin, prefix = base:match("^(https?://[^/]+)(.*)$")
  local rest = given:match("^https?://[^/]+(/.*)$") or given
  if prefix ~= "" and rest:sub(1, #prefix) ~= prefix then rest = prefix .. rest end
  return origin .. rest
end
M.upload_url = upload_url

-- src -> { path = p } | { data = bytes }, size, sniffed mime
local function source(src, level)
  level = level + 1
  if image.is_image(src) then
    if src.data then return { data = src.data }, #src.data, src.mimeType end
    src = src.path
  end
  if type(src) == "table" then
    for k in pairs(src) do
      if k ~= "data" and k ~= "path" then
        options.fail(level, "unknown upload source field '%s' (want data or path)", tostring(k))
      end
    end
    if type(src.data) == "string" then return { data = src.data }, #src.data, (core.sniff(src.data)) end
    src = src.path
  end
  if type(src) ~= "string" then options.fail(level, "upload(src): src is a path, an image or {data = bytes}") end
  -- a regular file only: a FIFO, device, socket or directory is an io error
  -- at once (never opened: an open of a FIFO would block)
  local mime, width_or_err, _, size = core.sniff_file(src)
  if mime == false then return nil, width_or_err end
  return { path = src }, size, mime or nil
end

--- client:start_upload(src, opts) -> request (non-blocking upload; its
-- result is the file table).
function M:start_upload(src, opts)
  local req = M._start_upload(self, src, opts, 2) -- not a tail call (error levels)
  return req
end

function M._start_upload(c, src, opts, level)
  level = (level or 1) + 1
  no_vertex(c, "upload", level)
  options.check(opts, UPLOAD_OPTS, "upload options", level)
  opts = opts or {}
  local chunk = opts.chunk_size or M.CHUNK
  if chunk < 1 or chunk % 1 ~= 0 then options.fail(level, "chunk_size must be a whole number >= 1") end
  local src_t, size, sniffed = source(src, level)
  local mime = opts.mimeType or sniffed
  if src_t and not mime then
    options.fail(level, "upload: cannot tell the MIME type of this file; pass mimeType")
  end
  local offset, url = 0, nil
  local req
  local function chunk_spec()
    local n = math.min(chunk, size - offset)
    local last = offset + n >= size
    local body
    if src_t.path then body = { n > 0 and { file = src_t.path, raw = true, offset = offset, length = n } or "" }
    else body = { src_t.data:sub(offset + 1, offset + n) } end
    req._sending = n
    return "POST", url, { "X-Goog-Upload-Command: " .. (last and "upload, finalize" or "upload"),
                          "X-Goog-Upload-Offset: " .. string.format("%d", offset),
                          "Content-Type: application/octet-stream" }, body
  end
  local function query_spec()
    req._sending = 0
    return "POST", url, { "X-Goog-Upload-Command: query" }, { "" }
  end
  local function final(r)
    local d, err = service.decode(req, r)
    if not d then return nil, err end
    if type(d.file) ~= "table" then
      return nil, errors.new("invalid_response",
        { message = "the finalized upload did not return a file", status = r.status }, c:_secrets())
    end
    return M.from_wire(d.file)
  end
  local phase = "start"
  req = service.new(c, { on_progress = opts.on_progress, on_done = opts.on_done, timeout = opts.timeout,
                         retries = opts.retries, connect_timeout = opts.connect_timeout,
                         stall_timeout = opts.stall_timeout }, level, function(rq, r)
    local status = service.header(r.headers, "x-goog-upload-status")
    if phase == "start" then
      local given = service.header(r.headers, "x-goog-upload-url")
      if not given then
        return nil, errors.new("invalid_response",
          { message = "the upload start answer has no x-goog-upload-url", status = r.status }, c:_secrets())
      end
      url = upload_url(c, given)
      phase = "chunk"
      return service.send(rq, chunk_spec())
    end
    if status == "final" then return final(r) end
    if phase == "query" then
      local got = tonumber(service.header(r.headers, "x-goog-upload-size-received") or "")
      if status ~= "active" or not got or got > size then
        return nil, errors.new("invalid_response",
          { message = "the upload query answer has no usable size received", status = r.status }, c:_secrets())
      end
      offset = got
      phase = "chunk"
      return service.send(rq, chunk_spec())
    end
    if status ~= "active" then
      local e = errors.new("invalid_response",
        { message = "an upload chunk's answer has no x-goog-upload-status", status = r.status }, c:_secrets())
      return nil, e
    end
    offset = offset + rq._sending
    if offset >= size then
      return nil, errors.new("invalid_response",
        { message = "the upload was not finalized after its last chunk", status = r.status }, c:_secrets())
    end
    return service.send(rq, chunk_spec())
  end, "upload")
  req.progress.upload_total = size or 0
  -- progress counts the whole file: the bytes of finished chunks plus this one's
  function req:_adjust_progress()
    local p = self.progress
    if phase == "chunk" then p.uploaded = offset + math.min(p.uploaded, self._sending or 0) else p.uploaded = offset end
    p.upload_total = size
  end
  -- a failed chunk (or query): ask the server what it has, then go on from
  -- there (within the call's retries); a failed start is retried as is
  req._on_fail = function(rq, err)
    if phase == "start" then return service.retryable(err) and service.retry_later(rq, err) end
    local s = err.status
    if s and s >= 400 and s < 500 and s ~= 400 and s ~= 408 and s ~= 429 then return false end
    if not service.retry_later(rq, err) then return false end
    phase = "query"
    return service.prepare(rq, query_spec()) == true
  end
  if not src_t then
    service.finish(req, nil, errors.new("io", { message = tostring(size) }, c:_secrets()))
    return req
  end
  local meta = { mimeType = mime, sizeBytes = string.format("%d", size), displayName = opts.displayName }
  local ver = c.options.api_version ~= "" and c.options.api_version or "v1beta"
  service.send(req, "POST", c.options.base_url .. "/upload/" .. ver .. "/files", {
    "X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
    "X-Goog-Upload-Header-Content-Length: " .. string.format("%d", size),
    "X-Goog-Upload-Header-Content-Type: " .. mime,
  }, { json.encode_text({ file = meta }, level) })
  return req
end

--- client:upload(src, opts) -> file | nil, err (blocking).
function M:upload(src, opts) return M._start_upload(self, src, opts, 2):_run() end

local function decoded_file(rq, r)
  local d, err = service.decode(rq, r)
  if not d then return nil, err end
  return M.from_wire(d)
end

--- client:file(name) -> file | nil, err ("files/abc" or "abc").
function M:file(name, opts)
  no_vertex(self, "file", 2)
  local id = file_id(name, 2)
  local req = service.new(self, opts, 2, decoded_file, "file")
  service.send(req, "GET", service.api(self) .. "/files/" .. id)
  return req:_run()
end

--- client:files{ page_size, page_token } -> array of files (with
-- .next_page_token), next_page_token | nil, err.
function M:files(opts)
  no_vertex(self, "files", 2)
  local q = service.page_query(opts, "files options", 2)
  local req = service.new(self, nil, 2, function(rq, r)
    local d, err = service.decode(rq, r)
    if not d then return nil, err end
    local out = json.array()
    for i, f in ipairs(type(d.files) == "table" and d.files or {}) do out[i] = M.from_wire(f) end
    out.next_page_token = d.nextPageToken
    return out
  end, "files")
  service.send(req, "GET", service.api(self) .. "/files" .. q)
  local list, err = req:_run()
  if not list then return nil, err end
  return list, list.next_page_token
end

--- client:delete_file(name) -> true | nil, err.
function M:delete_file(name, opts)
  no_vertex(self, "delete_file", 2)
  local id = file_id(name, 2)
  local req = service.new(self, opts, 2, function() return true end, "delete_file")
  service.send(req, "DELETE", service.api(self) .. "/files/" .. id)
  return req:_run()
end

return M
