"""ctrctl: the docker-shaped command line, a thin client over ctrd's gRPC API.

Start-up is kept cheap: `main` parses with argparse (only the running verb's flags are built) and
imports the verb's module; the gRPC client (h2) and the generated messages load only in verbs that talk to the daemon,
after every flag has been validated.

    main.py        entry point, error -> exit code          parser.py   the command line
    errors.py      CliError and docker's exit codes         client.py   channel, stubs, error mapping
    flags.py       flag values (sizes, cpus, ports, env..)  mounts.py   -v / --mount / --tmpfs
    spec.py        run/create flags -> ContainerSpec        attach.py   foreground run / start -a
    format.py      durations, sizes, tables, templates      ps.py       ps rows, filters, shapes
    cmd_*.py       the verbs                                completion.py  bash/zsh scripts
    template/      Go text/template for --format (docker's functions)
    deferred.py    library modules imported on first use (protobuf's pure-Python messages)
"""
