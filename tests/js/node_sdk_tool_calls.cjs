// The openai Node SDK (a client nobody here wrote) against the offline provider's tool calls:
// for each model given, a streamed request with two tools; the SDK assembles the calls itself
// (finalChatCompletion) and we print what it made of them, as one JSON line per model.
// Usage: node node_sdk_tool_calls.cjs BASE_URL MODEL...
const { OpenAI } = require("openai");

const NUMBERS = {
  type: "object", required: ["a", "b"],
  properties: { a: { type: "number" }, b: { type: "number" } },
};
const tools = ["add", "multiply"].map((name) => ({
  type: "function", function: { name, parameters: NUMBERS },
}));

async function main() {
  const [baseURL, ...models] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey: "node-sdk", maxRetries: 0 });
  for (const model of models) {
    const stream = client.chat.completions.stream({
      model, tools, messages: [{ role: "user", content: "add 2 and 3, then multiply 4 and 5" }],
    });
    const done = [];
    stream.on("tool_calls.function.arguments.done", (e) => done.push(e.name));
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    console.log(JSON.stringify({
      model, finish: choice.finish_reason, done,
      calls: (choice.message.tool_calls || []).map((c) => ({
        id: c.id, name: c.function.name, arguments: JSON.parse(c.function.arguments),
      })),
    }));
  }
}

main().catch((err) => { console.error(String(err)); process.exit(1); });
