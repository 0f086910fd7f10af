--- Turns a finished transfer into a result or an error object.
local errors = require "nanobanana.errors"
local image = require "nanobanana.image"
local json = require "nanobanana.json"

local M = {}

M.POLICY = {
  SAFETY = true, IMAGE_SAFETY = true, PROHIBITED_CONTENT = true, IMAGE_PROHIBITED_CONTENT = true,
  BLOCKLIST = true, SPII = true, RECITATION = true, IMAGE_RECITATION = true,
}

M.RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

local PLACEHOLDER = "^nb:blob:(%d+)$"

-- cjson gives floats for every number; make integral ones integers again
local function normalize(v, depth)
  if depth > 64 then return v end
  local tv = type(v)
  if tv == "number" then
    if math.type and math.type(v) == "float" and v == math.floor(v) and v >= -2^53 and v <= 2^53 then
      return math.tointeger(v)
    end
    return v
  end
  if tv == "table" then
    for k, x in pairs(v) do
      local tx = type(x)
      if tx == "number" or tx == "table" then v[k] = normalize(x, depth + 1) end
    end
  end
  return v
end

local function parse_duration(s)
  if type(s) ~= "string" then return nil end
  local n = s:match("^%s*([%d%.]+)s%s*$")
  return n and tonumber(n)
end

--- Server-requested delay: google.rpc.RetryInfo, else a Retry-After header.
local function server_delay(details, headers)
  if type(details) == "table" then
    for _, d in ipairs(details) do
      if type(d) == "table" and type(d["@type"]) == "string" and d["@type"]:find("RetryInfo", 1, true) then
        local v = parse_duration(d.retryDelay)
        if v then return v end
      end
    end
  end
  if headers then
    local ra = headers:lower():match("\nretry%-after:%s*([%d%.]+)%s*\r?\n")
    if ra then return tonumber(ra) end
  end
end
M.server_delay = server_delay

local function google_error(decoded)
  if type(decoded) ~= "table" then return nil end
  if type(decoded.error) == "table" then return decoded.error end
  if type(decoded[1]) == "table" and type(decoded[1].error) == "table" then return decoded[1].error end
end

local function api_error(ge, status, headers, secrets)
  local code = ge.status
  local num = ge.code
  if math.tointeger and type(num) == "number" then num = math.tointeger(num) or num end
  return errors.new("api", {
    status = (status >= 200 and status < 300 and type(num) == "number") and num or status,
    code = type(code) == "string" and code or nil,
    message = type(ge.message) == "string" and ge.message or "error without a message",
    details = ge.details,
    retry_after = server_delay(ge.details, headers),
  }, secrets)
end

--- Error for a non-2xx answer.
function M.http_error(status, body, headers, secrets)
  local decoded = json.decode(body)
  local ge = google_error(decoded)
  if ge then
    normalize(ge, 0)
    return api_error(ge, status, headers, secrets)
  end
  local excerpt = body:gsub("<[^>]*>", " "):gsub("%s+", " "):gsub("^ ", ""):sub(1, 200)
  return errors.new("http", {
    status = status,
    message = "HTTP " .. status .. (excerpt ~= "" and (": " .. excerpt) or " with an empty body"),
    retry_after = server_delay(nil, headers),
  }, secrets)
end

local function is_image_mime(m) return type(m) == "string" and m:sub(1, 6) == "image/" end

local function blob_key(part)
  return (part.inlineData ~= nil and "inlineData") or (part.inline_data ~= nil and "inline_data") or nil
end

local function candidate_parts(decoded)
  local cand = type(decoded) == "table" and type(decoded.candidates) == "table" and decoded.candidates[1]
  local parts = type(cand) == "table" and type(cand.content) == "table" and cand.content.parts
  return type(parts) == "table" and parts or nil, cand
end

--- Turns every blob placeholder of the first candidate's parts of a
-- decoded response into an Image (the part's inlineData.data is then the
-- image). take_blob(i, part) returns bytes or a path (and "data"/"file")
-- for blob i (1-based). Returns decoded, or nil, err (io).
function M.materialize(decoded, take_blob, secrets)
  local parts = candidate_parts(decoded)
  for _, part in ipairs(parts or {}) do
    local key = type(part) == "table" and blob_key(part)
    local blob = key and part[key]
    local idx = type(blob) == "table" and type(blob.data) == "string" and blob.data:match(PLACEHOLDER)
    if idx then
      local declared = blob.mimeType or blob.mime_type
      local v, how = take_blob(tonumber(idx) + 1, part)
      local img
      if how == "file" then img = image.from_file(v, declared)
      elseif v then img = image.from_bytes(v, nil, declared) end
      if not img then
        return nil, errors.new("io", { message = "cannot read the received image back" .. (how and "" or ": " .. tostring(v)) }, secrets)
      end
      img.mimeType = img.mimeType or declared
      img.declaredMimeType = declared
      img.thoughtSignature = part.thoughtSignature or part.thought_signature
      img.thought = part.thought == true or nil
      blob.data = img -- res.content / raw carry the image itself
    end
  end
  return decoded
end

--- Decodes a skeleton (a response, or one stream event): JSON, then an
-- error object in a 2xx becomes an api error. Returns the table (an object,
-- or for a plain-JSON stream an array of them), or nil, err.
function M.decode(skeleton, status, headers, secrets)
  local decoded, derr = json.decode(skeleton)
  if decoded == nil then
    return nil, errors.new("invalid_response", { message = "response is not JSON: " .. tostring(derr), status = status }, secrets)
  end
  normalize(decoded, 0)
  local ge = google_error(decoded)
  if ge then return nil, api_error(ge, status, headers, secrets) end
  -- secrets the server echoed go now, before any string of it is handed
  -- out (a result, raw, content, a stream event, an image's fields)
  errors.scrub_in_place(decoded, secrets)
  if type(decoded) ~= "table" then
    return nil, errors.new("invalid_response", { message = "response is not a JSON object", status = status }, secrets)
  end
  return decoded
end

--- The parts of a decoded response as stream events, in order:
-- { type = "text"|"thought"|"image", text = ... | image = ..., part = ... }.
function M.events(decoded)
  local out = {}
  for _, part in ipairs(candidate_parts(decoded) or {}) do
    if type(part) == "table" then
      local key = blob_key(part)
      local thought = part.thought == true
      if key then
        local img = type(part[key]) == "table" and part[key].data
        if image.is_image(img) then
          out[#out + 1] = { type = thought and "thought" or "image", image = img, part = part }
        end
      elseif type(part.text) == "string" then
        out[#out + 1] = { type = thought and "thought" or "text", text = part.text, part = part }
      end
    end
  end
  return out
end

--- Merges the responses of a stream into one: the first candidate's parts
-- in order, where a text part following a text part of the same kind
-- (thought or not) joins it (a signature on either is kept: Google may send
-- a signature on a later, empty chunk); other candidate fields and the
-- top-level fields (usageMetadata, modelVersion, responseId,
-- promptFeedback, ...) as the last chunk that has them says.
function M.merge(chunks)
  local merged, cand, parts = {}, nil, json.array()
  local role
  for _, ch in ipairs(chunks) do
    for k, v in pairs(ch) do
      if k ~= "candidates" then merged[k] = v end
    end
    local cparts, c = candidate_parts(ch)
    if type(c) == "table" then
      cand = cand or {}
      for k, v in pairs(c) do
        if k ~= "content" then cand[k] = v end
      end
      if type(c.content) == "table" and c.content.role then role = c.content.role end
      for _, part in ipairs(cparts or {}) do
        local last = parts[#parts]
        local sig = type(part) == "table" and (part.thoughtSignature or part.thought_signature)
        local lsig = type(last) == "table" and (last.thoughtSignature or last.thought_signature)
        if type(part) == "table" and type(part.text) == "string" and type(last) == "table"
           and type(last.text) == "string" and (part.thought == true) == (last.thought == true)
           and not (sig and lsig) and not blob_key(part) and not blob_key(last) then
          last.text = last.text .. part.text
          if sig and not lsig then last.thoughtSignature = sig end
        else
          local copy = {}
          if type(part) == "table" then for k, v in pairs(part) do copy[k] = v end end
          parts[#parts + 1] = copy
        end
      end
    end
  end
  if cand then
    cand.content = { role = role or "model", parts = parts }
    merged.candidates = json.array { cand }
  end
  return merged
end

--- A result from a decoded response (images already made by M.decode), or
-- nil, err: blocked / no_image / invalid_response.
function M.from_response(decoded, status, secrets)
  if decoded.candidates == nil and decoded.promptFeedback == nil then
    return nil, errors.new("invalid_response", {
      message = "response has neither candidates nor promptFeedback", status = status }, secrets)
  end
  -- (again: a stream's merge joins text parts, which may join a secret)
  errors.scrub_in_place(decoded, secrets)
  local res = {
    images = {}, thoughts = {}, raw = decoded,
    usageMetadata = decoded.usageMetadata, modelVersion = decoded.modelVersion,
    responseId = decoded.responseId, promptFeedback = decoded.promptFeedback,
  }
  local parts, cand = candidate_parts(decoded)
  local texts = {}
  if type(cand) == "table" then
    res.finishReason = cand.finishReason
    res.finishMessage = cand.finishMessage
    res.content = cand.content
  end
  for _, ev in ipairs(M.events(decoded)) do
    if ev.image then
      if ev.type == "thought" then res.thoughts[#res.thoughts + 1] = ev.image
      elseif is_image_mime(ev.image.mimeType) then res.images[#res.images + 1] = ev.image end
    elseif ev.type == "thought" then
      res.thoughts[#res.thoughts + 1] = { text = ev.text, thoughtSignature = ev.part.thoughtSignature or ev.part.thought_signature }
    else
      texts[#texts + 1] = ev.text
    end
  end
  if #texts > 0 then res.text = errors.scrub_string(table.concat(texts), secrets) end
  if #res.images > 0 then return res end

  local pf = type(decoded.promptFeedback) == "table" and decoded.promptFeedback or nil
  local fields = {
    status = status, finishReason = res.finishReason, finishMessage = res.finishMessage,
    blockReason = pf and pf.blockReason, text = res.text, response = res,
  }
  if fields.blockReason then
    fields.message = "the prompt was blocked (" .. tostring(fields.blockReason) .. ")"
    return nil, errors.new("blocked", fields, secrets)
  end
  if M.POLICY[res.finishReason] then
    fields.message = "the output was blocked (" .. tostring(res.finishReason) .. ")"
      .. (res.finishMessage and (": " .. res.finishMessage) or "")
    return nil, errors.new("blocked", fields, secrets)
  end
  fields.message = "the model returned no image (finishReason " .. tostring(res.finishReason) .. ")"
    .. (res.text and (": " .. res.text:sub(1, 200)) or "")
  return nil, errors.new("no_image", fields, secrets)
end

return M
