from nno.cli.main import run

run()
