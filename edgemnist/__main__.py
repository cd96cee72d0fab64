from edgemnist.cli import main

main()
