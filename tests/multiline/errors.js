// A Node.js program that prints errors with console.error(err), as apps and their
// frameworks do: an error with a cause, a plain one, a system error with its properties.
const fs = require("fs");

console.log(`${new Date().toISOString()} info started`);
const inner = new Error("connect ECONNREFUSED 127.0.0.1:5432");
inner.code = "ECONNREFUSED";
console.error(new TypeError("cannot load session", { cause: inner }));
console.log(`${new Date().toISOString()} info retrying`);
console.error(new RangeError("page size must be at most 100"));
try {
  fs.readFileSync("/nonexistent/prompt.txt");
} catch (err) {
  console.error(err);
}
console.log(`${new Date().toISOString()} info done`);
