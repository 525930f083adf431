// The blog's relay, in Node: the `http` module + openai-node, `stream: true`, and `res.write`
// of each `delta.content`, in one process. The benchmark runs it beside our relay so that the
// comparison comes from the same run (docs/performance.md).
//
// Run: node benchmarks/node_relay.cjs --base-url URL [--port 0] (prints its URL).
// openai-node comes from the project's package.json (devDependencies; `npm ci`); CommonJS so
// that NODE_PATH can point elsewhere, as for tests/js/node_sdk_tool_calls.cjs.
"use strict";

const http = require("node:http");
const { parseArgs } = require("node:util");

const { OpenAI } = require("openai");

const { values: args } = parseArgs({
  options: {
    "base-url": { type: "string" },
    "api-key": { type: "string", default: "bench-key" },
    model: { type: "string", default: "moonshot-v1-8k" },
    port: { type: "string", default: "0" },
  },
});
if (!args["base-url"]) {
  console.error("--base-url is required");
  process.exit(2);
}

const client = new OpenAI({ baseURL: args["base-url"], apiKey: args["api-key"] });

function readJson(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on("data", (part) => parts.push(part));
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  if (req.method !== "POST" || req.url !== "/chatbot/llm/chatstream") {
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { type: "not_found", message: "no such route" } }));
    return;
  }
  let question;
  try {
    ({ question } = await readJson(req));
  } catch {
    res.writeHead(400, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { type: "invalid_request_error", message: "bad JSON" } }));
    return;
  }
  try {
    const stream = await client.chat.completions.create({
      model: args.model,
      messages: [{ role: "user", content: question }],
      stream: true,
    });
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache" });
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      if (content) res.write(content);
    }
    res.end();
  } catch (err) {
    if (!res.headersSent) {
      res.writeHead(502, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { type: "upstream_error", message: String(err.message) } }));
    } else {
      res.end();
    }
  }
});

server.listen({ host: "127.0.0.1", port: Number(args.port), backlog: 4096 }, () => {
  console.log(`http://127.0.0.1:${server.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)) && server.closeAllConnections());
}
