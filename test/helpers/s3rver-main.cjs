// Runs s3rver as its own process, so a test can kill it like a real outage.
// argv: port directory bucket
const S3rver = require('s3rver');
const [port, directory, bucket] = process.argv.slice(2);
new S3rver({ port: Number(port), address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] })
  .run()
  .then(({ port: p }) => process.stdout.write(`listening ${p}\n`))
  .catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
