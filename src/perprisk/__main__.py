from perprisk.cli import main

main()
