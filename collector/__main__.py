from collector.cli_root import main

main()
