// A local OpenAI-compatible chat server on a real model, for hark's tests and benchmarks:
// llama.cpp (the prebuilt addon of the npm package node-llama-cpp) runs a GGUF chat model
// (SmolLM2-135M-Instruct, installed by scripts/local-llm.sh), and this file speaks OpenAI's
// Chat Completions protocol over HTTP/1.1: `POST /v1/chat/completions`, streamed as
// `text/event-stream` `chat.completion.chunk` events ended by `data: [DONE]`, or one JSON
// `chat.completion` without `stream`; errors as `{"error": {...}}` with an HTTP status.
//
// Every request and how it ended is appended to --log as one JSON line, so a test can see
// what hark asked (messages, tools) and whether it hung up mid-stream. The tools are logged
// and not offered to the model: a 135M model does not call functions reliably.
//
// Usage: node server.mjs --model FILE [--port 0] [--log FILE] [--threads 2]
// Prints "listening on http://127.0.0.1:PORT" once the model is loaded.
import http from "node:http";
import fs from "node:fs";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

function options(argv) {
  const o = { port: 0, threads: 2, log: null, model: null };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    o[key] = argv[i + 1];
  }
  if (!o.model) throw new Error("--model FILE is required");
  return o;
}

const opts = options(process.argv);
const record = (entry) => {
  if (opts.log) fs.appendFileSync(opts.log, JSON.stringify({ at: Date.now(), ...entry }) + "\n");
};

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: opts.model });
const context = await model.createContext({ contextSize: 4096, threads: Number(opts.threads) });
const modelName = "smollm2-135m-instruct";

// One sequence, one generation at a time: requests wait their turn.
let queue = Promise.resolve();
const inTurn = (work) => {
  const run = queue.then(work, work);
  queue = run.catch(() => {});
  return run;
};

// OpenAI messages → node-llama-cpp chat history, and the last user message to prompt with.
function conversation(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new Error("'messages' must be a non-empty array");
  }
  const text = (m) => (typeof m.content === "string" ? m.content : "");
  const history = [];
  for (const m of messages.slice(0, -1)) {
    if (m.role === "system") history.push({ type: "system", text: text(m) });
    else if (m.role === "user") history.push({ type: "user", text: text(m) });
    else if (m.role === "assistant") history.push({ type: "model", response: [text(m)] });
  }
  const last = messages[messages.length - 1];
  if (last.role !== "user") throw new Error("the last message must be the user's");
  return { history, prompt: text(last) };
}

function sendError(res, status, message, type) {
  const body = JSON.stringify({ error: { message, type, code: null } });
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function chunk(id, created, delta, finish) {
  const event = {
    id, object: "chat.completion.chunk", created, model: modelName,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(event)}\n\n`;
}

async function complete(req, res, body) {
  const { history, prompt } = conversation(body.messages);
  const id = `chatcmpl-${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const maxTokens = Number.isInteger(body.max_tokens) ? body.max_tokens : 256;
  const stream = body.stream === true;
  const hangUp = new AbortController();
  let answered = false;
  res.on("close", () => { if (!answered) hangUp.abort(); });
  record({ event: "request", stream, max_tokens: maxTokens, messages: body.messages, tools: body.tools ?? [] });

  await inTurn(async () => {
    if (hangUp.signal.aborted) return;
    const sequence = context.getSequence();
    const session = new LlamaChatSession({ contextSequence: sequence });
    session.setChatHistory(history);
    if (stream) {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.write(chunk(id, created, { role: "assistant", content: "" }, null));
    }
    let text = "";
    let tokens = 0;
    const started = Date.now();
    let firstToken = null;
    try {
      await session.prompt(prompt, {
        maxTokens,
        temperature: 0,
        signal: hangUp.signal,
        stopOnAbortSignal: true,
        onTextChunk: (piece) => {
          firstToken ??= Date.now() - started;
          tokens += 1;
          text += piece;
          if (stream && !hangUp.signal.aborted) res.write(chunk(id, created, { content: piece }, null));
        },
      });
    } finally {
      session.dispose();
      sequence.dispose();
    }
    const closed = hangUp.signal.aborted;
    record({ event: closed ? "closed" : "answered", text, pieces: tokens, first_token_ms: firstToken, ms: Date.now() - started });
    if (closed) return;
    answered = true;
    const finish = tokens >= maxTokens ? "length" : "stop";
    if (stream) {
      res.write(chunk(id, created, {}, finish));
      res.end("data: [DONE]\n\n");
    } else {
      const reply = JSON.stringify({
        id, object: "chat.completion", created, model: modelName,
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish }],
      });
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(reply);
    }
  });
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://localhost").pathname;
  if (req.method === "GET" && path === "/v1/models") {
    const body = JSON.stringify({ object: "list", data: [{ id: modelName, object: "model", owned_by: "local" }] });
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(body);
  }
  if (req.method !== "POST" || path !== "/v1/chat/completions") {
    return sendError(res, 404, `no route ${req.method} ${path}`, "invalid_request_error");
  }
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (d) => { raw += d; });
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      return sendError(res, 400, `the body is not JSON: ${e.message}`, "invalid_request_error");
    }
    complete(req, res, body).catch((e) => {
      record({ event: "error", message: e.message });
      if (!res.headersSent) sendError(res, 400, e.message, "invalid_request_error");
      else res.end();
    });
  });
});

server.listen(Number(opts.port), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
