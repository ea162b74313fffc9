// Updraft's Node.js runtime interface client: the Lambda Runtime API loop for handlers written
// for the `nodejs` runtime (CommonJS or ES modules, async or callback style). Shipped inside
// the updraft binary because AWS's `aws-lambda-ric` npm package builds native code with cmake
// at install time (see docs/lambda.md).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";
import fs from "node:fs";
import http from "node:http";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
const handlerName = process.env._HANDLER || "";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: api.split(":")[0], port: api.split(":")[1], path: `/2018-06-01/runtime/${p}`, method, agent, headers },
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
  try {
    const result = await invokeHandler(handler, event, context(next.headers));
    const body = result === undefined ? "null" : JSON.stringify(result);
    await call("POST", `invocation/${id}/response`, body);
  } catch (e) {
    console.error(e);
    await call("POST", `invocation/${id}/error`, JSON.stringify(errorBody(e)), { "Lambda-Runtime-Function-Error-Type": e?.name || "Error" });
  }
}
