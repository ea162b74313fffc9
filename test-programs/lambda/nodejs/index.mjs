// Test handler for Updraft's process runtime: see ../README.md.
let count = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function info(event, context) {
  return {
    request_id: context.awsRequestId,
    deadline_ms: Date.now() + context.getRemainingTimeInMillis(),
    arn: context.invokedFunctionArn,
    function: context.functionName,
    memory: Number(context.memoryLimitInMB),
    route_key: event.routeKey,
    param: event.pathParameters?.op,
    count,
    pid: process.pid,
    claims: event.requestContext?.authorizer?.jwt?.claims ?? null,
    env_home: process.env.HOME,
    identity: context.identity ? [context.identity.cognitoIdentityId, context.identity.cognitoIdentityPoolId] : null,
  };
}

export const handler = async (event, context) => {
  count += 1;
  if (event?.version === "2.0") {
    const op = event.pathParameters?.op;
    if (op === "hello") return { statusCode: 200, headers: { "content-type": "text/plain" }, body: "Hello, world!" };
    if (op === "error") throw new Error("asked to fail");
    if (op === "sleep") await sleep(60_000);
    if (op === "sleep1") await sleep(1000);
    if (op === "alloc") {
      const blocks = [];
      for (let i = 0; i < 512; i++) blocks.push(Buffer.alloc(1 << 20, 1));
      globalThis.keep = blocks;
    }
    if (op === "exit") process.exit(3);
    return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(info(event, context)) };
  }
  if (event?.Records?.[0]?.eventSource === "aws:sqs") {
    const batchItemFailures = [];
    for (const r of event.Records) {
      console.log("sqs", r.body);
      if (r.body === "fail") batchItemFailures.push({ itemIdentifier: r.messageId });
    }
    return { batchItemFailures };
  }
  if (event?.["detail-type"] === "Scheduled Event") {
    console.log("scheduled", event.id);
    return null;
  }
  return { echo: event, request_id: context.awsRequestId, count, client_context: context.clientContext?.custom ?? null };
};

// `index.streamer`: Lambda's response streaming (see ../README.md).
export const streamer = awslambda.streamifyResponse(async (event, responseStream) => {
  const op = event.pathParameters?.op;
  if (op === "fail-early") throw new Error("failed before writing");
  const stream = op === "raw"
    ? responseStream
    : awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201,
      headers: { "content-type": "text/plain", "x-streamed": "node" },
      cookies: ["flavour=oat"],
    });
  for (const [i, word] of ["one", "two", "three"].entries()) {
    if (i > 0) await sleep(1000);
    stream.write(`${word}\n`);
    if (op === "fail-mid") {
      await sleep(300); // `one` reaches the caller before the body is cut off
      throw new Error("failed mid-stream");
    }
  }
  stream.end();
});
