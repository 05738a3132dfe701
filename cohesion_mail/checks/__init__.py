"""Preflight rules, one module per kind of mistake; ``cohesion_mail.check`` runs them.

* ``source``  — the campaign YAML read with the line of every field (even when it fails validation)
* ``urls``    — what is wrong with one link: placeholder, malformed, not https
* ``content`` — rules on what the editor wrote: links, images, subject, preheader, merge fields,
  postal address
* ``html``    — rules on the compiled email: Gmail's clipping size, the unsubscribe link, links
  and images that templates add
* ``css``     — CSS the major clients do not support, judged against ``data/caniemail.json``
"""
