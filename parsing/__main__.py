from parsing.commands.cli import main

main()
