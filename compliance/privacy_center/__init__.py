"""The privacy center: the data subject's own pages at /privacy/.

No staff login: a person starts a request, proves their email with a code, follows the
request, downloads their copy and sets their consent preferences. Plain HTML that works
without JavaScript; every page and email is translatable (English and German ship).
"""
