"""``python -m cohesion_mail``: the same CLI as the ``cohesion-mail`` script."""

from .cli import main

if __name__ == "__main__":
    main()
