"""Users and their access: accounts and passwords (`service`, `passwords`), the login wall
and sign-in pages (`auth`), REST API tokens (`tokens`)."""
