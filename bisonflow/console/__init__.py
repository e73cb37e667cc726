"""The console: the workflow in a browser, as the Step Functions console shows it, on the
laptop's emulator (`bisonflow local up`) or an AWS account (`bisonflow console`).

One small web application over the same boto3 calls the CLI makes:

- connection.py  what the console talks to: the account, region, endpoint and stack, with the
                 user's credentials, which stay in this process (the browser never sees them);
- server.py      HTTP on 127.0.0.1 only: the session token in every path, state changes by POST
                 only, the page's origin the only one it may load from;
- frame.py       the frame every page shares (navigation, the account and region it talks to);
- pages/         one module per page, each with its ROUTES;
- app.py         the routes together, and serve().

The console never asks whether it talks to an emulator: it follows the stack's outputs, and
what only a local runtime can do (fire the schedule now, serve its log files) is handed to it
by `bisonflow local up` (bisonflow.cli.commands.local).
"""
