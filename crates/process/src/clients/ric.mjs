// Updraft's Node.js runtime interface client: the Lambda Runtime API loop for handlers written
// for the `nodejs` runtime (CommonJS or ES modules, async or callback style, and response
// streaming with `awslambda.streamifyResponse` as on Lambda). Shipped inside
// the updraft binary because AWS's `aws-lambda-ric` npm package builds native code with cmake
// at install time (see docs/lambda.md).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";
import fs from "node:fs";
import http from "node:http";
import { Writable } from "node:stream";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
const handlerName = process.env._HANDLER || "";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const [apiHost, apiPort] = (api || ":").split(":");

// Response streaming, as Lambda's Node.js runtimes offer it through the `awslambda` global.
const STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response";
globalThis.awslambda = {
  streamifyResponse(fn) {
    fn[STREAMING] = "response";
    return fn;
  },
  HttpResponseStream: class HttpResponseStream {
    // The prelude (statusCode, headers, cookies) and eight NUL bytes go before the first chunk.
    static from(stream, prelude) {
      stream.setContentType(HTTP_INTEGRATION);
      const meta = JSON.stringify(prelude ?? {});
      stream._onBeforeFirstWrite = (write) => {
        write(meta);
        write(new Uint8Array(8));
      };
      return stream;
    }
  },
};

function call(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: apiHost, port: apiPort, path: `/2018-06-01/runtime/${p}`, method, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function errorBody(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    errorType: e.name || "Error",
    errorMessage: e.message,
    trace: (e.stack || "").split("\n"),
  };
}

async function loadHandler() {
  const dot = handlerName.lastIndexOf(".");
  if (dot < 1) throw Object.assign(new Error(`Bad handler ${handlerName}`), { name: "Runtime.MalformedHandlerName" });
  const modulePath = handlerName.slice(0, dot);
  const exportName = handlerName.slice(dot + 1);
  const base = path.resolve(root, modulePath);
  let mod;
  for (const ext of [".mjs", ".cjs", ".js"]) {
    if (fs.existsSync(base + ext)) {
      if (ext === ".cjs" || (ext === ".js" && !isModule(base))) {
        mod = createRequire(base + ext)(base + ext);
      } else {
        mod = await import(pathToFileURL(base + ext).href);
      }
      break;
    }
  }
  if (mod === undefined) {
    throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: "Runtime.ImportModuleError" });
  }
  const fn = mod[exportName] ?? mod.default?.[exportName];
  if (typeof fn !== "function") {
    throw Object.assign(new Error(`${handlerName} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  }
  return fn;
}

// A .js file is an ES module when the nearest package.json says "type": "module".
function isModule(base) {
  let dir = path.dirname(base);
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try { return JSON.parse(fs.readFileSync(pkg, "utf8")).type === "module"; } catch { return false; }
    }
    const up = path.dirname(dir);
    if (up === dir || !up.startsWith(root)) return false;
    dir = up;
  }
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: headers["lambda-runtime-client-context"] ? JSON.parse(headers["lambda-runtime-client-context"]) : undefined,
    identity: headers["lambda-runtime-cognito-identity"] ? JSON.parse(headers["lambda-runtime-cognito-identity"]) : undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => {}, succeed: () => {}, fail: () => {},
  };
}

function invokeHandler(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      err ? reject(err) : resolve(result);
    };
    try {
      const out = fn(event, ctx, callback);
      if (out && typeof out.then === "function") {
        out.then((r) => callback(null, r), (e) => callback(e));
      } else if (fn.length < 3) {
        callback(null, out);
      }
    } catch (e) {
      callback(e);
    }
  });
}

// The response stream a streaming handler writes to. Its request is opened on the first write
// (or the end), so a handler that fails before writing anything reports an ordinary error; one
// that fails later ends the stream with the error in trailers.
function responseStream(id) {
  let req, done, failure, contentType = "application/octet-stream";
  const open = () => {
    if (req) return;
    req = http.request({
      host: apiHost, port: apiPort, path: `/2018-06-01/runtime/invocation/${id}/response`, method: "POST", agent,
      headers: {
        "Lambda-Runtime-Function-Response-Mode": "streaming",
        "Content-Type": contentType,
        "Transfer-Encoding": "chunked",
        Trailer: "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
      },
    });
    done = new Promise((resolve, reject) => {
      req.on("response", (res) => { res.resume(); res.on("end", resolve); });
      req.on("error", reject);
    });
    stream._onBeforeFirstWrite?.((c) => req.write(c));
  };
  const stream = new Writable({
    write(chunk, _encoding, cb) {
      open();
      req.write(chunk, cb);
    },
    final(cb) {
      open();
      if (failure) {
        const body = errorBody(failure);
        req.addTrailers({
          "Lambda-Runtime-Function-Error-Type": body.errorType,
          "Lambda-Runtime-Function-Error-Body": Buffer.from(JSON.stringify(body)).toString("base64"),
        });
      }
      req.end(cb);
    },
  });
  stream.setContentType = (t) => { contentType = t; };
  stream.started = () => req !== undefined;
  // Ends the stream with `err` in its trailers, after what was written (unless it has ended).
  stream.fail = (err) => {
    if (stream.writableEnded) return;
    failure = err;
    stream.end();
  };
  // Settles once the stream has finished and the Runtime API has answered its request.
  stream.done = async () => {
    if (!stream.writableFinished) {
      await new Promise((resolve) => stream.once("finish", resolve).once("error", resolve));
    }
    await done?.catch((e) => console.error(e));
  };
  return stream;
}

async function invokeStreaming(id, event, ctx) {
  const stream = responseStream(id);
  try {
    await handler(event, stream, ctx);
    if (!stream.writableEnded) stream.end();
  } catch (e) {
    console.error(e);
    if (!stream.started()) {
      await call("POST", `invocation/${id}/error`, JSON.stringify(errorBody(e)), { "Lambda-Runtime-Function-Error-Type": e?.name || "Error" });
      return;
    }
    stream.fail(e);
  }
  await stream.done();
}

let handler;
try {
  handler = await loadHandler();
} catch (e) {
  console.error(e);
  await call("POST", "init/error", JSON.stringify(errorBody(e)), { "Lambda-Runtime-Function-Error-Type": e.name || "Runtime.Unknown" });
  process.exit(1);
}

for (;;) {
  const next = await call("GET", "invocation/next");
  const id = next.headers["lambda-runtime-aws-request-id"];
  process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"] || "";
  let event;
  try {
    event = JSON.parse(next.body.toString("utf8") || "null");
  } catch {
    event = next.body.toString("utf8");
  }
  if (handler[STREAMING] === "response") {
    await invokeStreaming(id, event, context(next.headers));
    continue;
  }
  try {
    const result = await invokeHandler(handler, event, context(next.headers));
    const body = result === undefined ? "null" : JSON.stringify(result);
    await call("POST", `invocation/${id}/response`, body);
  } catch (e) {
    console.error(e);
    await call("POST", `invocation/${id}/error`, JSON.stringify(errorBody(e)), { "Lambda-Runtime-Function-Error-Type": e?.name || "Error" });
  }
}
