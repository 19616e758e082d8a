from tidings.cli.main import run

run()
