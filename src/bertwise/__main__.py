from bertwise.cli.main import main

main()
