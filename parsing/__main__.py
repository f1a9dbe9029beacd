from parsing.cli import main

main()
