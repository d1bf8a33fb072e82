// An instant backend for the throughput runs: it answers every POST /api/<kind> with the answer
// recorded for the request's `op`, after a fixed delay. Against it, a client's throughput shows
// its own limits, without those of the emulator (one transaction at a time, whole-table scans).
//
//   node echo.mjs <delay ms> < answers.json      (answers: {"<op>": "<response body>", ...})
//
// Prints its URL on stdout once listening; runs until killed.
import http from "node:http";

const delayMs = Number(process.argv[2] ?? 20);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const answers = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const server = http.createServer((req, res) => {
  const body = [];
  req.on("data", (chunk) => body.push(chunk));
  req.on("end", () => {
    const answer = answers[JSON.parse(Buffer.concat(body).toString("utf8")).args?.op];
    setTimeout(() => {
      res.writeHead(answer === undefined ? 404 : 200, { "Content-Type": "application/json" });
      res.end(answer ?? "");
    }, delayMs);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}\n`);
});
