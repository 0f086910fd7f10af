-- nanobanana: Gemini-native image generation for Lua (C core on libcurl).
-- The version is defined once, in src/core/version.h; this file's name,
-- `version` and `source.tag` must agree with it, and `build.modules` must
-- list every lua/nanobanana/*.lua and src/core/*.c (spec/00-version_spec.lua
-- checks both). Publishing: see README "Releasing".
rockspec_format = "3.0"
package = "nanobanana"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/nanobanana-lua/nanobanana.git",
  tag = "v0.1.0",
}
description = {
  summary = "Generate and edit images with Gemini (Nano Banana) from Lua",
  detailed = [[
    A Lua client for the Gemini-native generateContent image models
    (gemini-3.1-flash-image, gemini-3-pro-image, gemini-2.5-flash-image and
    the preview ids), against Google, Vertex AI or a gateway, with the Files
    and Batch APIs. Its C core streams and decodes image payloads as they
    arrive, runs many requests at once on one libcurl multi handle, and never
    blocks a game loop or an editor: it plugs into luv, cqueues and LuaSocket.
  ]],
  homepage = "https://github.com/nanobanana-lua/nanobanana",
  license = "MIT",
  labels = { "image", "gemini", "http", "curl" },
}
-- POSIX only (pthreads, POSIX file calls): Linux, macOS and the BSDs
supported_platforms = { "unix" }
dependencies = {
  "lua >= 5.1, < 5.5", -- 5.4 first; 5.3, 5.2, 5.1 and LuaJIT 2.1 are tested too
  "lua-cjson >= 2.1.0",
}
-- The library, not the header: LuaRocks looks for headers in <prefix>/include
-- only, and Debian/Ubuntu keep curl/curl.h under the multiarch include dir
-- (/usr/include/x86_64-linux-gnu), which the compiler searches on its own.
-- Elsewhere CURL_DIR=/opt/homebrew/opt/curl (or CURL_INCDIR/CURL_LIBDIR)
-- points LuaRocks at a libcurl it does not find by itself.
external_dependencies = {
  CURL = { library = "curl" },
}
build = {
  type = "builtin",
  modules = {
    ["nanobanana.core"] = {
      sources = {
        "src/lua_nanobanana.c",
        "src/core/b64.c",
        "src/core/blob.c",
        "src/core/fsutil.c",
        "src/core/scan.c",
        "src/core/sniff.c",
        "src/core/sse.c",
        "src/core/transport.c",
      },
      -- 64-bit off_t on 32-bit hosts (files past 2 GiB), as CMakeLists.txt
      defines = { "_FILE_OFFSET_BITS=64" },
      incdirs = { "src", "src/core", "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      libraries = { "curl", "pthread" },
    },
    ["nanobanana"] = "lua/nanobanana/init.lua",
    ["nanobanana.batch"] = "lua/nanobanana/batch.lua",
    ["nanobanana.chat"] = "lua/nanobanana/chat.lua",
    ["nanobanana.cli"] = "lua/nanobanana/cli.lua",
    ["nanobanana.client"] = "lua/nanobanana/client.lua",
    ["nanobanana.engine"] = "lua/nanobanana/engine.lua",
    ["nanobanana.errors"] = "lua/nanobanana/errors.lua",
    ["nanobanana.files"] = "lua/nanobanana/files.lua",
    ["nanobanana.image"] = "lua/nanobanana/image.lua",
    ["nanobanana.json"] = "lua/nanobanana/json.lua",
    ["nanobanana.loop"] = "lua/nanobanana/loop.lua",
    ["nanobanana.many"] = "lua/nanobanana/many.lua",
    ["nanobanana.models"] = "lua/nanobanana/models.lua",
    ["nanobanana.options"] = "lua/nanobanana/options.lua",
    ["nanobanana.request"] = "lua/nanobanana/request.lua",
    ["nanobanana.result"] = "lua/nanobanana/result.lua",
    ["nanobanana.service"] = "lua/nanobanana/service.lua",
    ["nanobanana.stream"] = "lua/nanobanana/stream.lua",
    ["nanobanana.util"] = "lua/nanobanana/util.lua",
    ["nanobanana.vertex"] = "lua/nanobanana/vertex.lua",
    ["nanobanana.wire"] = "lua/nanobanana/wire.lua",
  },
  install = {
    bin = { nanobanana = "bin/nanobanana" },
  },
}
