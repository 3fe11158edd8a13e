from drsn_edge.cli import main

raise SystemExit(main())
